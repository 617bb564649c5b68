//! gantry-api: the AWS APIs on the wire. Types generated from botocore's API models, one module
//! per service ([`ecs`], also reachable as [`model`]; [`sts`]; [`logs`]; [`servicediscovery`], ...), lenient integer
//! decoding ([`wire`]), errors in the AWS shape ([`error`]), ARNs ([`arn`]) and the
//! task-definition rules ([`taskdef`]). Pure: no I/O.

#[rustfmt::skip]
pub mod acm;
pub mod agent;
pub mod arn;
pub mod error;
#[rustfmt::skip]
pub mod ecs;
#[rustfmt::skip]
pub mod logs;
#[rustfmt::skip]
pub mod secretsmanager;
#[rustfmt::skip]
pub mod servicediscovery;
#[rustfmt::skip]
pub mod ssm;
#[rustfmt::skip]
pub mod sts;
pub mod taskdef;
pub mod wire;

/// The ECS wire types, under the name the rest of gantry uses.
pub use ecs as model;

pub use arn::{Arns, TaskDefRef};
pub use error::{decode, ApiError, ErrorCode};
