//! Where the `secrets` of task definitions come from: the services that hold them (Secrets
//! Manager, SSM Parameter Store), which ECS sees only through [`SecretSource`], so that neither
//! service crate depends on the other.

use crate::authz::Gate;
use crate::error::ServiceError;

/// Reads a secret's value for a task, as the principal the gate holds (the task's execution
/// role), authorizing as a direct call would.
pub trait SecretSource: Send + Sync + 'static {
    /// The value `value_from` names: a Secrets Manager secret ARN (with optional
    /// `:json-key:version-stage:version-id`), or an SSM parameter's name or ARN. The error
    /// is the service's own (`AccessDeniedException`, `ResourceNotFoundException`,
    /// `ParameterNotFound`, ...).
    fn value(&self, value_from: &str, gate: &Gate<'_>) -> Result<String, ServiceError>;

    /// Which service `value_from` is read from, for messages: `asm` or `ssm`, as ECS says.
    fn service_of(&self, value_from: &str) -> &'static str {
        if value_from.starts_with("arn:aws:secretsmanager:") {
            "asm"
        } else {
            "ssm"
        }
    }
}
