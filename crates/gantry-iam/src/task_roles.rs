//! Sessions of the roles ECS tasks run as: issued as `assumed-role/<role>/<task id>`, renewed
//! once half their life is gone, ended when the task stops (see gantry-core's
//! [`TaskRoles`]).

use crate::access::trusted_by;
use crate::model::Session;
use crate::sts::{new_session, start_session};
use crate::Iam;
use gantry_api::agent::RoleCredentials;
use gantry_core::{ServiceError, TaskRoles};
use gantry_store::BoxFuture;
use std::sync::Arc;

/// The service principal task roles must trust.
const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// [`TaskRoles`] over the identity service.
pub struct TaskSessions(pub Arc<Iam>);

fn credentials_of(role_arn: &str, s: &Session) -> RoleCredentials {
    RoleCredentials {
        role_arn: role_arn.to_string(),
        access_key_id: s.access_key_id.clone(),
        secret_access_key: s.secret.clone(),
        token: s.token.clone(),
        expiration: s.expires_at,
    }
}

fn refused(message: String) -> ServiceError {
    ServiceError::new("AccessDenied", 403, message)
}

impl TaskRoles for TaskSessions {
    fn credentials<'a>(
        &'a self,
        role_arn: &'a str,
        task_arn: &'a str,
    ) -> BoxFuture<'a, Result<RoleCredentials, ServiceError>> {
        Box::pin(async move {
            let iam = &self.0;
            let task_id = task_arn.rsplit('/').next().unwrap_or(task_arn);
            let lifetime = iam.settings().task_session_secs.max(1);
            let (owner, user_id, arn) = {
                let view = iam.view();
                let role = trusted_by(&view, role_arn, ECS_TASKS).map_err(refused)?;
                let owner = format!("assumed-role/{}/{task_id}", role.name);
                let now = crate::unix_now();
                // The newest live session of this task and role, while it has half its life.
                let current = view
                    .task_sessions
                    .get(task_arn)
                    .into_iter()
                    .flatten()
                    .filter_map(|id| view.dir.sessions.get(id))
                    .filter(|s| s.owner == owner)
                    .max_by_key(|s| s.expires_at);
                if let Some(s) = current.filter(|s| s.expires_at - now > lifetime / 2) {
                    return Ok(credentials_of(&role.arn, s));
                }
                (owner, format!("{}:{task_id}", role.id), role.arn.clone())
            };
            let mut session = new_session(owner, user_id);
            session.task = Some(task_arn.to_string());
            let s = start_session(iam, session, lifetime).await?;
            Ok(credentials_of(&arn, &s))
        })
    }

    fn tasks(&self) -> Vec<String> {
        self.0.view().task_sessions.keys().cloned().collect()
    }

    fn revoke<'a>(&'a self, task_arn: &'a str) -> BoxFuture<'a, Result<usize, ServiceError>> {
        Box::pin(async move {
            self.0
                .write(|d| {
                    let ids: Vec<String> = d
                        .dir
                        .sessions
                        .values()
                        .filter(|s| s.task.as_deref() == Some(task_arn))
                        .map(|s| s.access_key_id.clone())
                        .collect();
                    for id in &ids {
                        d.delete_session(id);
                    }
                    Ok(ids.len())
                })
                .await
        })
    }
}
