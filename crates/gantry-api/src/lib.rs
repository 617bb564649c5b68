//! gantry-api: the ECS API on the wire. Types generated from the API model ([`model`]),
//! lenient integer decoding ([`wire`]), errors in the AWS shape ([`error`]), ARNs ([`arn`]) and
//! the task-definition rules ([`taskdef`]). Pure: no I/O.

pub mod agent;
pub mod arn;
pub mod error;
#[rustfmt::skip]
pub mod model;
pub mod taskdef;
pub mod wire;

pub use arn::{Arns, TaskDefRef};
pub use error::{decode, ApiError, ErrorCode};
