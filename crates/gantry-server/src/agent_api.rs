//! The agent endpoint: `/agent/v1/register`, `/agent/v1/poll` (long-poll), `/agent/v1/report`,
//! `/agent/v1/logs` ([`crate::agent_logs`]).
//! Agents authenticate with the join token as a bearer token.

use crate::ops::{instances, reports};
use crate::state::records;
use crate::{now_secs, Server};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use gantry_api::agent::*;
use gantry_api::model::Attribute;
use gantry_api::{decode, ApiError, ErrorCode};
use gantry_store::Txn;
use std::sync::Arc;
use std::time::Duration;

/// The longest a poll is held open.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(20);

pub fn routes() -> Router<Arc<Server>> {
    Router::new()
        .route(REGISTER_PATH, post(register))
        .route(POLL_PATH, post(poll))
        .route(REPORT_PATH, post(report))
        .route(LOGS_PATH, post(crate::agent_logs::ship))
}

pub(crate) fn reply<T: serde::Serialize>(r: Result<T, ApiError>) -> Response {
    match r.and_then(|v| serde_json::to_vec(&v).map_err(|e| ApiError::server(e.to_string()))) {
        Ok(body) => (StatusCode::OK, [("content-type", "application/json")], body).into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
            (status, [("content-type", "application/json")], e.to_json()).into_response()
        }
    }
}

pub(crate) fn authorize(server: &Server, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &server.config.join_token else {
        return Err(ApiError::new(
            ErrorCode::AccessDeniedException,
            "This server accepts no agents (no join token is configured).",
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Constant-time comparison.
    let eq = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if eq {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::AccessDeniedException,
            "Invalid join token.",
        ))
    }
}

async fn register(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    reply(register_inner(&server, &headers, &body).await)
}

async fn register_inner(
    server: &Server,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<RegisterResponse, ApiError> {
    authorize(server, headers)?;
    let req: RegisterRequest = decode(body)?;
    if !matches!(req.capacity.as_str(), "ec2" | "fargate" | "both") {
        return Err(ApiError::invalid(
            "Invalid 'capacity': use ec2, fargate or both.",
        ));
    }
    let mut attributes = req.attributes;
    attributes.push(Attribute {
        name: "ecs.capability.gantry-agent".into(),
        value: None,
        ..Attribute::default()
    });
    let c = instances::register_instance(
        server,
        instances::Registration {
            cluster: Some(req.cluster),
            existing_arn: req.container_instance_arn,
            total_resources: req.total_resources,
            version_info: Some(req.version_info),
            attributes,
            hostname: Some(req.hostname),
            tags: Vec::new(),
            has_agent: true,
            capacity: req.capacity,
            capacity_provider: req.capacity_provider,
            held_ranges: req
                .engine_networks
                .into_iter()
                .filter(|n| n.installation != server.installation)
                .map(|n| n.cidr)
                .collect(),
        },
    )
    .await?;
    Ok(RegisterResponse {
        container_instance: c,
        installation: server.installation.clone(),
    })
}

async fn poll(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    reply(poll_inner(&server, &headers, &body).await)
}

pub(crate) fn instance_id(server: &Server, arn: &str) -> Result<String, ApiError> {
    server
        .arns
        .resource_id("container-instance", arn)
        .map(str::to_string)
        .ok_or_else(|| ApiError::invalid(format!("Invalid container instance ARN {arn:?}.")))
}

async fn poll_inner(
    server: &Server,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PollResponse, ApiError> {
    authorize(server, headers)?;
    let req: PollRequest = decode(body)?;
    let id = instance_id(server, &req.container_instance_arn)?;
    let wait = Duration::from_millis(req.wait_ms).min(MAX_POLL_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    server.touch(&id, 1)?;
    // Counts the poll as open until it ends, however it ends (a client that disconnects drops
    // this future mid-wait).
    struct Open<'a>(&'a Server, String);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            let _ = self.0.touch(&self.1, -1);
        }
    }
    let _open = Open(server, id.clone());
    let result = async {
        loop {
            // Subscribe before looking, so that no change between the look and the wait is lost.
            let mut changes = server.subscribe(&id)?;
            let snapshot = server.read(|st| {
                let inst = st
                    .instances
                    .get(&id)
                    .ok_or_else(|| ApiError::invalid("Unknown container instance."))?;
                if inst.status() == "INACTIVE" {
                    return Err(ApiError::new(
                        ErrorCode::ClientException,
                        "The container instance was deregistered; register again.",
                    ));
                }
                if inst.revision == req.revision && tokio::time::Instant::now() < deadline {
                    return Ok(None);
                }
                let assigned = st
                    .instance_tasks(&id)
                    .filter(|t| !t.is_stopped())
                    .filter_map(|t| {
                        let arn = t.task.task_definition_arn.as_deref()?;
                        let r = gantry_api::TaskDefRef::parse(&server.arns, arn).ok()?;
                        let td = crate::ops::resolve_task_definition(st, &r)?;
                        Some(AssignedTask {
                            task: t.task.clone(),
                            task_definition: td,
                            firewall: crate::ops::security_groups::firewall(st, t),
                            secrets: Default::default(),
                            secrets_error: None,
                            credentials: None,
                        })
                    })
                    .collect();
                Ok(Some(PollResponse {
                    revision: inst.revision,
                    tasks: assigned,
                    instance_tags: inst.instance.tags.clone().unwrap_or_default(),
                }))
            })??;
            if let Some(mut r) = snapshot {
                // Outside the state lock: reading secrets asks the identity service.
                for a in &mut r.tasks {
                    crate::task_secrets::resolve(server, a);
                    crate::task_secrets::role_credentials(server, a).await;
                }
                return Ok(r);
            }
            let _ = tokio::time::timeout_at(deadline, changes.changed()).await;
        }
    }
    .await;
    result
}

async fn report(State(server): State<Arc<Server>>, headers: HeaderMap, body: Bytes) -> Response {
    reply(report_inner(&server, &headers, &body).await)
}

async fn report_inner(
    server: &Server,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ReportResponse, ApiError> {
    authorize(server, headers)?;
    let req: ReportRequest = decode(body)?;
    let id = instance_id(server, &req.container_instance_arn)?;
    server.touch(&id, 0)?;
    let now = now_secs();
    server
        .write(move |st| {
            let mut txn = Txn::new();
            let mut ignored = Vec::new();
            for r in &req.tasks {
                match reports::apply_report(st, &id, r, now) {
                    Some(t) => txn = records::TASKS.put(txn, &t.id, &t),
                    None => ignored.push(r.task_arn.clone()),
                }
            }
            Ok((ReportResponse { ignored }, txn))
        })
        .await
}
