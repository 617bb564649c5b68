//! `/agent/v1/logs`: an agent ships the `awslogs` output of a task's container, which the
//! server stores through gantry-core's [`gantry_core::LogSink`] as the task's execution role
//! (a session named by the task id, as for its secrets). A task without an execution role
//! ships with the agent's own authority, as ECS on EC2 ships with the instance's role.

use crate::agent_api::{authorize, instance_id, reply};
use crate::task_secrets::{agent_context, role_session};
use crate::Server;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use gantry_api::agent::{ShipRequest, ShipResponse};
use gantry_api::{decode, ApiError, ErrorCode};
use gantry_core::authz::DenialShape;
use gantry_core::{Gate, Principal};
use std::sync::Arc;

pub(crate) async fn ship(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    reply(ship_inner(&server, &headers, &body).await)
}

async fn ship_inner(
    server: &Server,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ShipResponse, ApiError> {
    authorize(server, headers)?;
    let req: ShipRequest = decode(body)?;
    let instance = instance_id(server, &req.container_instance_arn)?;
    let task_id = req
        .task_arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    // The task must be this instance's; its execution role ships.
    let role = server.read(|st| {
        let t = st
            .tasks
            .get(&task_id)
            .filter(|t| t.task.task_arn.as_deref() == Some(req.task_arn.as_str()))
            .filter(|t| t.instance == instance)
            .ok_or_else(|| ApiError::invalid("No such task on this container instance."))?;
        let td = t
            .task
            .task_definition_arn
            .as_deref()
            .and_then(|arn| gantry_api::TaskDefRef::parse(&server.arns, arn).ok())
            .and_then(|r| crate::ops::resolve_task_definition(st, &r));
        Ok::<_, ApiError>(
            t.task
                .overrides
                .as_ref()
                .and_then(|o| o.execution_role_arn.clone())
                .or_else(|| td.and_then(|td| td.execution_role_arn)),
        )
    })??;
    let Some((access, sink)) = server
        .config
        .task_access
        .as_ref()
        .and_then(|a| Some((a, a.logs.clone()?)))
    else {
        return Err(ApiError::new(
            ErrorCode::ClientException,
            "This server does not serve CloudWatch Logs.",
        ));
    };
    let account = &server.config.account_id;
    let principal = match role {
        Some(role) => role_session(account, &role, &task_id).ok_or_else(|| {
            ApiError::invalid(format!("The execution role {role} is not a role ARN."))
        })?,
        None => Principal {
            account: account.clone(),
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.clone(),
            access_key_id: String::new(),
            admin: true,
        },
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
    match sink.ship(req, &gate).await {
        Ok(stored_to) => Ok(ShipResponse { stored_to }),
        Err(e) => Err(ApiError::new(
            ErrorCode::ClientException,
            format!("{}: {}", e.code, e.message),
        )),
    }
}
