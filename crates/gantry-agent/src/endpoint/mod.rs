//! The endpoint the agent serves its tasks at `http://169.254.170.2`, as the ECS agent does:
//!
//! - `/v2/credentials/<id>`: the task role's credentials (ECS's shape), to the task's own
//!   containers only ([`caller`]);
//! - `/v4/<ref>` and `/v3/<ref>` (`ECS_CONTAINER_METADATA_URI_V4`, `..._URI`): container and task
//!   metadata, `/taskWithTags`, and Docker stats ([`metadata`]);
//! - `/api/<ref>/...` (`ECS_AGENT_URI`): the agent's task API;
//! - anything else: gantry's own API, proxied to the control plane unchanged (signed requests
//!   keep their `Host`), so that `AWS_ENDPOINT_URL=http://169.254.170.2` reaches every service.
//!
//! [`route`] says how the address reaches the agent; [`names`] what containers are told.

pub mod caller;
pub mod metadata;
pub mod names;
pub mod route;

use crate::registry::{TaskEntry, TaskRegistry};
use crate::runtime::{time_rfc3339, ContainerRuntime, Observed};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use metadata::{InstanceFacts, Version};
use names::{parse_container_ref, Names};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The largest request body proxied to the control plane.
const MAX_PROXIED_BODY: usize = 16 * 1024 * 1024;

/// The endpoint's state: the agent's registry and runtime, and where to send API calls.
pub struct Endpoint<R: ContainerRuntime> {
    pub names: Names,
    pub registry: TaskRegistry,
    pub rt: Arc<R>,
    /// What every task's metadata says of the instance (updated from each poll answer).
    pub facts: Arc<RwLock<InstanceFacts>>,
    /// The control plane's URL.
    pub upstream: String,
    pub http: reqwest::Client,
    /// How long a caller not (yet) known by its address is looked for: a container may call
    /// before the agent has seen it start.
    pub caller_wait: Duration,
}

/// A JSON answer.
fn answer(status: StatusCode, v: &serde_json::Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn ok(v: serde_json::Value) -> Response {
    answer(StatusCode::OK, &v)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    answer(status, &json!({"code": code, "message": message.into()}))
}

/// The endpoint's routes.
pub fn router<R: ContainerRuntime>(e: Arc<Endpoint<R>>) -> Router {
    Router::new()
        .route("/v2/credentials/{id}", get(credentials::<R>))
        .route("/v4/{cref}", get(metadata_v4::<R>))
        .route("/v4/{cref}/{*rest}", get(metadata_v4_more::<R>))
        .route("/v3/{cref}", get(metadata_v3::<R>))
        .route("/v3/{cref}/{*rest}", get(metadata_v3_more::<R>))
        .route("/api/{cref}", any(agent_api))
        .route("/api/{cref}/{*rest}", any(agent_api))
        .fallback(proxy::<R>)
        .with_state(e)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve<R: ContainerRuntime>(
    listener: tokio::net::TcpListener,
    e: Arc<Endpoint<R>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(e).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

impl<R: ContainerRuntime> Endpoint<R> {
    /// The task of the container calling from `peer`, waiting up to `caller_wait` for it to
    /// become known.
    async fn caller(&self, peer: SocketAddr) -> Option<TaskEntry> {
        let deadline = tokio::time::Instant::now() + self.caller_wait;
        loop {
            if let Some(t) = self.registry.by_ip(&peer.ip().to_string()) {
                return Some(t);
            }
            // A host-mode container: the connection's owner names it.
            let id = tokio::task::spawn_blocking(move || caller::container_of_local_peer(peer))
                .await
                .ok()
                .flatten();
            if let Some((t, _)) = id.and_then(|id| self.registry.by_container_id(&id)) {
                return Some(t);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn task_by_id(&self, task_id: &str) -> Option<TaskEntry> {
        self.registry
            .list()
            .into_iter()
            .find(|t| t.task_arn.rsplit('/').next() == Some(task_id))
    }

    /// What the runtime reports of the task's containers, by runtime id.
    async fn observe(&self, t: &TaskEntry) -> HashMap<String, Observed> {
        let mut out = HashMap::new();
        for id in t.containers.iter().filter_map(|c| c.id.clone()) {
            if let Ok(Some(o)) = self.rt.inspect(&id).await {
                out.insert(id, o);
            }
        }
        out
    }

    fn facts(&self) -> InstanceFacts {
        match self.facts.read() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

async fn credentials<R: ContainerRuntime>(
    State(e): State<Arc<Endpoint<R>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
) -> Response {
    let task = e
        .registry
        .list()
        .into_iter()
        .find(|t| t.last_status != "STOPPED" && e.names.credentials_id(&t.task_arn) == id);
    let Some(task) = task else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidIdInRequest",
            "CredentialsV2Request: Credentials not found",
        );
    };
    match e.caller(peer).await {
        Some(c) if c.task_arn == task.task_arn => {}
        _ => {
            tracing::warn!(%peer, task = %task.task_arn, "refused a task's credentials to a caller that is not that task");
            return error(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "CredentialsV2Request: these credentials are served to their own task's containers only",
            );
        }
    }
    let Some(c) = &task.assignment.credentials else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "CredentialsNotAvailable",
            "CredentialsV2Request: the control plane has not issued this task's credentials yet",
        );
    };
    ok(json!({
        "RoleArn": c.role_arn,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key,
        "Token": c.token,
        "Expiration": time_rfc3339(c.expiration, 0),
    }))
}

async fn metadata_v4<R: ContainerRuntime>(
    State(e): State<Arc<Endpoint<R>>>,
    Path(cref): Path<String>,
) -> Response {
    metadata_answer(&e, Version::V4, &cref, "").await
}

async fn metadata_v4_more<R: ContainerRuntime>(
    State(e): State<Arc<Endpoint<R>>>,
    Path((cref, rest)): Path<(String, String)>,
) -> Response {
    metadata_answer(&e, Version::V4, &cref, &rest).await
}

async fn metadata_v3<R: ContainerRuntime>(
    State(e): State<Arc<Endpoint<R>>>,
    Path(cref): Path<String>,
) -> Response {
    metadata_answer(&e, Version::V3, &cref, "").await
}

async fn metadata_v3_more<R: ContainerRuntime>(
    State(e): State<Arc<Endpoint<R>>>,
    Path((cref, rest)): Path<(String, String)>,
) -> Response {
    metadata_answer(&e, Version::V3, &cref, &rest).await
}

async fn metadata_answer<R: ContainerRuntime>(
    e: &Endpoint<R>,
    v: Version,
    cref: &str,
    rest: &str,
) -> Response {
    let found = parse_container_ref(cref).and_then(|(task_id, index)| {
        let t = e.task_by_id(task_id)?;
        (index < t.containers.len()).then_some((t, index))
    });
    let Some((t, index)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no task on this instance has the container {cref:?}"),
        );
    };
    let facts = e.facts();
    let c = &t.containers[index];
    match rest.trim_end_matches('/') {
        "" => {
            let o = match &c.id {
                Some(id) => e.rt.inspect(id).await.ok().flatten(),
                None => None,
            };
            ok(metadata::container(&t, c, o.as_ref(), &facts, v))
        }
        "task" | "taskWithTags" => {
            let observed = e.observe(&t).await;
            let with_tags = rest.starts_with("taskWithTags");
            ok(metadata::task(&t, &observed, &facts, v, with_tags))
        }
        "stats" => match &c.id {
            Some(id) => match e.rt.docker_stats(id).await {
                Ok(s) => ok(s),
                Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, "StatsUnavailable", err.0),
            },
            None => ok(serde_json::Value::Null),
        },
        "task/stats" => {
            let mut all = serde_json::Map::new();
            for id in t.containers.iter().filter_map(|c| c.id.clone()) {
                let s = e.rt.docker_stats(&id).await.unwrap_or(serde_json::Value::Null);
                all.insert(id, s);
            }
            ok(serde_json::Value::Object(all))
        }
        other => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the metadata endpoint has no path {other:?}: it serves '', /task, /taskWithTags, /stats and /task/stats"),
        ),
    }
}

async fn agent_api() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "this agent serves no task API at ECS_AGENT_URI yet (task scale-in protection is not served)",
    )
}

/// Headers that belong to one hop, never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
            | "content-length"
    )
}

/// Forwards a request to the control plane as it came (its `Host` too: SigV4 signs it).
async fn proxy<R: ContainerRuntime>(State(e): State<Arc<Endpoint<R>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_PROXIED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("requests through the task endpoint are at most {MAX_PROXIED_BODY} bytes"),
            )
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", e.upstream.trim_end_matches('/'));
    let mut headers = HeaderMap::new();
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) {
            headers.append(k.clone(), v.clone());
        }
    }
    let sent = e
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(err) => {
            return error(
                StatusCode::BAD_GATEWAY,
                "ServiceUnavailable",
                format!("the control plane is not reachable from this agent: {err}"),
            )
        }
    };
    let status = resp.status();
    let mut out = Response::builder().status(status);
    for (k, v) in resp.headers() {
        if !hop_by_hop(k) {
            out = out.header(k, v);
        }
    }
    match resp.bytes().await {
        Ok(b) => out
            .body(Body::from(b))
            .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()),
        Err(err) => error(
            StatusCode::BAD_GATEWAY,
            "ServiceUnavailable",
            format!("the control plane's answer was cut off: {err}"),
        ),
    }
}

/// What [`start`] serves from: the agent's runtime and registry, and where the API is.
pub struct Parts<R: ContainerRuntime> {
    pub rt: Arc<R>,
    pub registry: TaskRegistry,
    pub upstream: String,
    pub http: reqwest::Client,
    /// Where the key of credential ids is kept (`<data-dir>/endpoint.key`).
    pub key_path: std::path::PathBuf,
    pub availability_zone: String,
}

/// Routes the endpoint's address to the agent and serves it. Returns what workers and the
/// poll loop need of it; nothing when it cannot be served (the tasks then run without it).
pub async fn start<R: ContainerRuntime>(
    te: &crate::TaskEndpoint,
    parts: Parts<R>,
) -> (
    Option<names::Names>,
    Option<Arc<std::sync::RwLock<metadata::InstanceFacts>>>,
    Option<tokio::task::JoinHandle<()>>,
) {
    let listen = std::net::SocketAddrV4::new(te.address, te.port);
    let address = te.address;
    match tokio::task::spawn_blocking(move || route::install(address, listen)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not route {address}:80 to the agent: tasks cannot reach their credentials and metadata")
        }
        Err(e) => tracing::warn!(error = %e, "routing the task endpoint failed"),
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%listen, error = %e, "the task endpoint is not served (another agent on this host may serve it): containers get no credentials or metadata endpoint");
            return (None, None, None);
        }
    };
    let names = match names::Names::open(format!("http://{address}"), &parts.key_path) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "the task endpoint's key (<data-dir>/endpoint.key) is unusable: no endpoint");
            return (None, None, None);
        }
    };
    let facts = Arc::new(std::sync::RwLock::new(metadata::InstanceFacts {
        availability_zone: parts.availability_zone,
        host_ip: host_ip(),
        tags: Vec::new(),
    }));
    let e = Arc::new(Endpoint {
        names: names.clone(),
        registry: parts.registry,
        rt: parts.rt,
        facts: facts.clone(),
        upstream: parts.upstream,
        http: parts.http,
        caller_wait: te.caller_wait,
    });
    tracing::info!(%listen, "serving the task endpoint at http://{address} (credentials, metadata, the API)");
    let join = tokio::spawn(async move {
        if let Err(err) = serve(listener, e, std::future::pending()).await {
            tracing::error!(error = %err, "the task endpoint stopped");
        }
    });
    (Some(names), Some(facts), Some(join))
}

/// The host's address on its default route (host-mode tasks' address in their metadata). A
/// UDP socket's `connect` picks the source address without sending anything.
fn host_ip() -> Option<String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip().to_string())
}
