//! gantry-core: what every AWS service gantry serves shares.
//!
//! - [`table`]: the table of services on the one port: how each is recognised (X-Amz-Target
//!   prefix, Query `Version` under its signing name, RPC v2 CBOR path), its signing name,
//!   regions and dispatcher.
//! - [`protocol`]: AWS JSON 1.0/1.1, Query with XML answers, RPC v2 CBOR: answers and errors in
//!   each one's shape.
//! - [`frontdoor`]: the HTTP handler: route, SigV4, authorize, dispatch, encode, count.
//! - [`authz`]: the authorization hook every call passes before its handler runs.
//! - [`json`]: the JSON services' bodies in and out, with each service's error names.
//! - [`query`]: Query (form) parameters in, XML answers out, for the awsQuery services.
//! - [`record`]: typed records, and a store namespace per service and region.
//! - [`records`]: records of one kind in memory, written through to the store.
//! - [`secret_source`]: how ECS reads task secrets from the services that hold them.
//! - [`log_sink`]: where ECS sends task output for `awslogs`.
//! - [`task_roles`]: how ECS gets (and ends) the sessions of the roles its tasks run as.
//! - [`targets`]: where ECS services register their tasks with load balancers.
//! - [`registries`]: where ECS services register their tasks for discovery by name.
//! - [`cbor`]: RPC v2 CBOR calls to services written against AWS JSON.
//! - [`certificates`]: where load balancers get their HTTPS listeners' certificates.
//! - [`clock`]: injected time, so reconcilers are tested on a fake clock.
//! - [`metrics`]: request counters in the Prometheus text format.

pub mod authz;
pub mod cbor;
pub mod certificates;
pub mod clock;
pub mod error;
pub mod frontdoor;
pub mod json;
pub mod log_sink;
pub mod metrics;
pub mod protocol;
pub mod query;
pub mod record;
pub mod records;
pub mod registries;
pub mod secret_source;
pub mod table;
pub mod targets;
pub mod task_roles;

pub use authz::{AdminOnly, Ask, Authorizer, Caller, Gate, NoTags, Principal, TagSource};
pub use certificates::{CertificateStore, KeyPair};
pub use clock::{Clock, FakeClock, SystemClock};
pub use error::ServiceError;
pub use frontdoor::FrontDoor;
pub use log_sink::LogSink;
pub use protocol::Protocol;
pub use record::{Kind, RecordError, Scoped};
pub use records::{Records, Rows};
pub use registries::{RegistryNeeds, ServiceRegistry};
pub use secret_source::SecretSource;
pub use table::{Call, Dispatch, Input, Recognise, Regions, ServiceEntry, ServiceTable};
pub use targets::{TargetRegistry, TargetState};
pub use task_roles::TaskRoles;
