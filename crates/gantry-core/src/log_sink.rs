//! Where the `awslogs` output of task containers goes: the CloudWatch Logs service, which the
//! agent endpoint sees only through [`LogSink`], so that ECS does not depend on the logs crate.

use crate::authz::Gate;
use crate::error::ServiceError;
use gantry_api::agent::ShipRequest;
use gantry_store::BoxFuture;

/// Stores task output in log streams, authorized as the principal the gate holds (the task's
/// execution role): `logs:PutLogEvents` on the stream, and `logs:CreateLogStream` (and
/// `logs:CreateLogGroup` when the batch asks for it) for what does not exist yet.
pub trait LogSink: Send + Sync + 'static {
    /// Stores the batch's events unless its stream already holds its source past `from`;
    /// returns how far the stream holds the source.
    fn ship<'a>(
        &'a self,
        batch: ShipRequest,
        gate: &'a Gate<'a>,
    ) -> BoxFuture<'a, Result<u64, ServiceError>>;
}
