//! The HTTP face of the control plane: AWS JSON 1.1 on `POST /`, plus `/metrics` and `/healthz`.

use crate::Server;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gantry_api::model::{Operation, TARGET_PREFIX};
use gantry_api::{ApiError, ErrorCode};
use gantry_auth::RequestParts;
use std::sync::Arc;
use std::time::Instant;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The router: the ECS API on every other path and method (answering errors as AWS would).
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(crate::agent_api::routes())
        .fallback(api)
        .with_state(server)
}

async fn metrics(State(server): State<Arc<Server>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        server.metrics.render(),
    )
}

fn respond(status: u16, body: Vec<u8>, request_id: &str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

fn error_response(e: &ApiError, request_id: &str) -> Response {
    let mut resp = respond(e.code.status(), e.to_json().into_bytes(), request_id);
    resp.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static(e.code.as_str()),
    );
    resp
}

async fn api(State(server): State<Arc<Server>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (op, result) = handle(&server, req).await;
    let op_name = op.map_or("-", |o| o.name());
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.code.as_str(),
    };
    let elapsed = started.elapsed().as_secs_f64();
    server.metrics.observe(op_name, outcome, elapsed);
    match result {
        Ok(body) => {
            tracing::debug!(op = op_name, ms = elapsed * 1e3, "ok");
            respond(200, body, &request_id)
        }
        Err(e) => {
            if e.code == ErrorCode::ServerException {
                tracing::error!(op = op_name, error = %e, "request failed");
            } else {
                tracing::debug!(op = op_name, error = %e, "request refused");
            }
            error_response(&e, &request_id)
        }
    }
}

async fn handle(server: &Server, req: Request) -> (Option<Operation>, Result<Vec<u8>, ApiError>) {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, server.config.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return (
                None,
                Err(ApiError::new(
                    ErrorCode::SerializationException,
                    format!(
                        "The request body is larger than {} bytes.",
                        server.config.max_body_bytes
                    ),
                )),
            )
        }
    };
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers,
        body: &body,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let who = match gantry_auth::verify(
        &request,
        &server.config.keys,
        &server.config.region,
        "ecs",
        now,
    ) {
        Ok(who) => who,
        Err(e) => return (None, Err(e)),
    };
    if parts.method != Method::POST || parts.uri.path() != "/" {
        return (
            None,
            Err(ApiError::new(
                ErrorCode::UnknownOperationException,
                "The ECS API is served as AWS JSON 1.1: POST / with an X-Amz-Target header.",
            )),
        );
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(own) = target
        .strip_prefix(crate::ops::security_groups::PREFIX)
        .and_then(|t| t.strip_prefix('.'))
    {
        if parts.method == Method::POST && parts.uri.path() == "/" {
            return (
                None,
                crate::ops::security_groups::dispatch(server, own, &body).await,
            );
        }
    }
    let op = target
        .strip_prefix(TARGET_PREFIX)
        .and_then(|t| t.strip_prefix('.'))
        .and_then(Operation::from_name);
    let Some(op) = op else {
        let shown = if target.is_empty() {
            "(no X-Amz-Target header)"
        } else {
            target
        };
        return (
            None,
            Err(ApiError::new(
                ErrorCode::UnknownOperationException,
                format!("Unknown operation {shown}"),
            )),
        );
    };
    (Some(op), server.dispatch(op, &body, &who).await)
}
