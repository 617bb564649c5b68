//! gantry-iam: the account's identities, served as AWS's global IAM and STS services.
//!
//! Today: STS's GetCallerIdentity ([`sts`]), over the Query protocol with XML answers, one
//! entry of gantry-core's service table. Users, roles, policies and sessions build on it.

pub mod sts;
