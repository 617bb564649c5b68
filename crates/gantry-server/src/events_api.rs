//! `GET /gantry/v1/events`: ECS's events as a server-sent event stream (one `data:` line of
//! EventBridge JSON an event), signed with SigV4 for the service `gantry` and authorized as
//! `gantry:StreamEvents`. `cluster` (a name or an ARN) and `detail-type` filter it; `recent=true`
//! first replays the newest events the server holds; `follow=false` ends the stream after them.

use crate::events::wanted;
use crate::Server;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use gantry_core::authz::{AuthzContext, DenialShape};
use gantry_core::{FrontDoor, Gate, Principal};
use std::sync::Arc;
use std::time::Duration;

pub const EVENTS_PATH: &str = "/gantry/v1/events";

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({"__type": code, "message": message}).to_string(),
    )
        .into_response()
}

pub(crate) async fn stream(
    server: Arc<Server>,
    door: Arc<FrontDoor>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = uri.query().unwrap_or("");
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let parts = gantry_auth::RequestParts {
        method: "GET",
        path: uri.path(),
        query,
        headers: pairs,
        body: b"",
    };
    let now = crate::now_secs() as i64;
    let region = server.config.region.clone();
    let verified = gantry_auth::verify_scoped(&parts, door.keys.as_ref(), "gantry", now, &|r| {
        if r == region {
            Ok(())
        } else {
            Err(gantry_auth::wrong_region(r, &region))
        }
    });
    let identity = match verified {
        Ok(v) => v.identity,
        Err(e) => return refuse(StatusCode::FORBIDDEN, e.code.as_str(), &e.message),
    };
    let principal = Principal::from_key(&server.config.account_id, &identity);
    let context = AuthzContext {
        region: server.config.region.clone(),
        source_ip: None,
        secure_transport: false,
        current_time: now,
    };
    let gate = Gate::new(
        &principal,
        door.authorizer.as_ref(),
        &context,
        DenialShape {
            code: "AccessDeniedException",
            status: 400,
        },
    );
    if let Err(e) = gate.authorize("gantry:StreamEvents", &["*".to_string()]) {
        return refuse(StatusCode::BAD_REQUEST, &e.code, &e.message);
    }
    let params = gantry_core::protocol::parse_form(query.as_bytes());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (cluster, detail_type) = (get("cluster"), get("detail-type"));
    let replay: Vec<_> = if get("recent").as_deref() == Some("true") {
        server.events.recent()
    } else {
        Vec::new()
    };
    let follow = get("follow").as_deref() != Some("false");
    let rx = follow.then(|| server.events.subscribe());
    let state = (replay.into_iter(), rx, cluster, detail_type);
    let events =
        futures_util::stream::unfold(state, |(mut replay, mut rx, cluster, dt)| async move {
            loop {
                let e = match replay.next() {
                    Some(e) => e,
                    None => match rx.as_mut()?.recv().await {
                        Ok(e) => e,
                        // A slow reader misses events rather than holding the server's memory.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                };
                if wanted(&e, cluster.as_deref(), dt.as_deref()) {
                    let ev = Event::default().data(e.to_string());
                    return Some((
                        Ok::<_, std::convert::Infallible>(ev),
                        (replay, rx, cluster, dt),
                    ));
                }
            }
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
