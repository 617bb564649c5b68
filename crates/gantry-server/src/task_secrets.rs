//! What a task is handed besides its definition, in its agent's poll answer only (never in the
//! task's record, DescribeTasks or the store):
//!
//! - its `secrets` and `logConfiguration.secretOptions`, resolved as its execution role; a
//!   refusal makes the task fail to start with ECS's reason
//!   (`ResourceInitializationError: unable to pull secrets or registry auth: ...`);
//! - the credentials of its task role, a session the identity service issues and renews
//!   (and ends once the task has stopped, [`crate::reconcile::task_credentials_round`]).

use crate::Server;
use gantry_api::agent::{AssignedTask, RegistryAuth};
use gantry_core::authz::{AuthzContext, DenialShape};
use gantry_core::{Gate, Principal, ServiceError};

/// ECS's prefix of a secret that could not be read.
const PREFIX: &str = "ResourceInitializationError: unable to pull secrets or registry auth";

/// The principal an execution role acts as for a task: a session of the role named by the
/// task's id, as the ECS agent's credentials are.
pub(crate) fn role_session(account: &str, role_arn: &str, task_id: &str) -> Option<Principal> {
    let name = role_arn.split(":role/").nth(1)?.rsplit('/').next()?;
    Some(Principal {
        account: account.to_string(),
        arn: format!("arn:aws:sts::{account}:assumed-role/{name}/{task_id}"),
        user_id: format!("{name}:{task_id}"),
        access_key_id: String::new(),
        admin: false,
    })
}

/// Where a resolved secret goes.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    /// An environment variable (`secrets`).
    Env,
    /// A log driver option (`logConfiguration.secretOptions`).
    Log,
    /// The registry credentials (`repositoryCredentials`).
    Registry,
}

/// The context of what the server does for a task as its execution role: the server's region,
/// now, over the agent's (trusted) channel.
pub(crate) fn agent_context(server: &Server) -> AuthzContext {
    AuthzContext {
        region: server.config.region.clone(),
        source_ip: None,
        secure_transport: true,
        current_time: crate::now_secs() as i64,
    }
}

/// Fills `a.secrets` (or `a.secrets_error`) from the task definition's `secrets`,
/// `logConfiguration.secretOptions` and `repositoryCredentials`.
pub(crate) fn resolve(server: &Server, a: &mut AssignedTask) {
    let account = &server.config.account_id;
    let region = &server.config.region;
    // (container, target, name, valueFrom)
    let wanted: Vec<(String, Target, String, String)> = a
        .task_definition
        .container_definitions
        .iter()
        .flatten()
        .flat_map(|c| {
            let container = c.name.clone().unwrap_or_default();
            let env = c
                .secrets
                .iter()
                .flatten()
                .map(|s| (Target::Env, s.name.clone(), s.value_from.clone()));
            let log = c
                .log_configuration
                .iter()
                .flat_map(|l| l.secret_options.iter().flatten())
                .map(|s| (Target::Log, s.name.clone(), s.value_from.clone()));
            // A secret's name stands for the ARN of that name in the task's region.
            let registry = c.repository_credentials.iter().map(|r| {
                let p = &r.credentials_parameter;
                let arn = if p.starts_with("arn:") {
                    p.clone()
                } else {
                    format!("arn:aws:secretsmanager:{region}:{account}:secret:{p}")
                };
                (Target::Registry, String::new(), arn)
            });
            env.chain(log)
                .chain(registry)
                .map(move |(target, name, from)| (container.clone(), target, name, from))
                .collect::<Vec<_>>()
        })
        .collect();
    if wanted.is_empty() || a.task.desired_status.as_deref() == Some("STOPPED") {
        return;
    }
    let fail = |why: String| {
        Some(format!(
            "{PREFIX}: execution resource retrieval failed: {why}"
        ))
    };
    let Some(access) = &server.config.task_access else {
        a.secrets_error = fail("this server does not serve Secrets Manager or SSM".into());
        return;
    };
    let role = a
        .task
        .overrides
        .as_ref()
        .and_then(|o| o.execution_role_arn.clone())
        .or_else(|| a.task_definition.execution_role_arn.clone());
    let Some(role) = role else {
        a.secrets_error =
            fail("the task definition has secrets but no executionRoleArn to read them as".into());
        return;
    };
    let task_id = a
        .task
        .task_arn
        .as_deref()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let Some(principal) = role_session(&server.config.account_id, &role, &task_id) else {
        a.secrets_error = fail(format!("{role} is not a role ARN"));
        return;
    };
    let context = agent_context(server);
    let gate = Gate::new(
        &principal,
        access.authorizer.as_ref(),
        &context,
        DenialShape {
            code: "AccessDeniedException",
            status: 400,
        },
    );
    for (container, target, name, value_from) in wanted {
        let value = access.secrets.value(&value_from, &gate).and_then(|v| {
            if target != Target::Registry {
                return Ok((v, None));
            }
            let auth: RegistryAuth = serde_json::from_str(&v).map_err(|_| {
                ServiceError::new(
                    "InvalidSecret",
                    400,
                    "the secret is not JSON of the form {\"username\": \"...\", \"password\": \"...\"}",
                )
            })?;
            Ok((String::new(), Some(auth)))
        });
        match value {
            Ok((v, auth)) => {
                let c = a.secrets.entry(container).or_default();
                match target {
                    Target::Env => c.env.push((name, v)),
                    Target::Log => c.log_options.push((name, v)),
                    Target::Registry => c.registry_auth = auth,
                }
            }
            Err(e) => {
                a.secrets.clear();
                a.secrets_error = fail(format!(
                    "unable to retrieve secret from {}: {value_from}: {}: {}",
                    access.secrets.service_of(&value_from),
                    e.code,
                    e.message
                ));
                return;
            }
        }
    }
}

/// Fills `a.credentials` with a session of the task's role, when it names one.
pub(crate) async fn role_credentials(server: &Server, a: &mut AssignedTask) {
    if a.task.desired_status.as_deref() == Some("STOPPED") {
        return;
    }
    let role = a
        .task
        .overrides
        .as_ref()
        .and_then(|o| o.task_role_arn.clone())
        .or_else(|| a.task_definition.task_role_arn.clone());
    let (Some(role), Some(task_arn)) = (role, a.task.task_arn.as_deref()) else {
        return;
    };
    let Some(access) = &server.config.task_access else {
        return;
    };
    match access.roles.credentials(&role, task_arn).await {
        Ok(c) => a.credentials = Some(c),
        Err(e) => {
            tracing::warn!(task = task_arn, role = %role, error = %e.message, "no credentials for the task's role")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_role_acts_as_a_session_named_by_the_task() {
        let p = role_session("1", "arn:aws:iam::1:role/svc/exec", "abc").unwrap();
        assert_eq!(p.arn, "arn:aws:sts::1:assumed-role/exec/abc");
        assert!(!p.admin);
        assert!(role_session("1", "arn:aws:iam::1:user/x", "abc").is_none());
    }
}
