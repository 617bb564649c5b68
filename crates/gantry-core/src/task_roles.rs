//! Credentials for the roles tasks run as (`taskRoleArn`): sessions the identity service issues
//! and ends, which ECS sees only through [`TaskRoles`], so that the ECS crate does not depend
//! on the identity crate.

use crate::error::ServiceError;
use gantry_api::agent::RoleCredentials;
use gantry_store::BoxFuture;

/// Issues and ends the sessions a task's containers sign with.
pub trait TaskRoles: Send + Sync + 'static {
    /// Credentials of `role_arn` for the task `task_arn`, a session named by the task's id: the
    /// one already issued while more than half of its life is left, a new one otherwise (the
    /// older stays valid until it expires, so that callers holding it are not cut off). Refused
    /// when the role does not exist or does not trust `ecs-tasks.amazonaws.com`.
    fn credentials<'a>(
        &'a self,
        role_arn: &'a str,
        task_arn: &'a str,
    ) -> BoxFuture<'a, Result<RoleCredentials, ServiceError>>;

    /// The tasks that hold sessions now (expired or not).
    fn tasks(&self) -> Vec<String>;

    /// Ends every session of the task `task_arn`: its keys stop signing at once. Returns how
    /// many there were.
    fn revoke<'a>(&'a self, task_arn: &'a str) -> BoxFuture<'a, Result<usize, ServiceError>>;
}
