//! The HTTP front door: every signed AWS request on the port goes through [`FrontDoor::handle`].
//!
//! Body (size-limited) → route by the [`ServiceTable`] → SigV4 for the entry's signing name and
//! regions → the entry's dispatcher, under a tracing span naming service, operation and request
//! id → the answer or error in the entry's protocol. Counted in [`Metrics`].

use crate::authz::{Authorizer, AuthzContext, Gate, Principal};
use crate::error::{FrontEndFault, ServiceError};
use crate::metrics::Metrics;
use crate::protocol::{parse_form, Encoded, Protocol};
use crate::table::{Call, Envelope, Input, Regions, Route, ServiceTable};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use gantry_auth::RequestParts;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// Marks a request that came over TLS (the HTTPS listener adds it): `aws:SecureTransport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecureTransport;

/// Everything the front door needs.
pub struct FrontDoor {
    pub table: ServiceTable,
    pub keys: Arc<dyn gantry_auth::Keys>,
    pub account_id: String,
    pub authorizer: Arc<dyn Authorizer>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    pub metrics: Metrics,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn into_response(e: Encoded) -> Response {
    let mut resp = Response::new(Body::from(e.body));
    *resp.status_mut() =
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    for (name, value) in e.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    }
    resp
}

/// What one request came to, for the log and the metrics.
struct Outcome {
    service: &'static str,
    operation: String,
    result: Result<Vec<u8>, ServiceError>,
    protocol: Protocol,
    namespace: &'static str,
}

impl FrontDoor {
    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let out = self.serve(req, &request_id).await;
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = match &out.result {
            Ok(_) => "ok",
            Err(e) => e.code.as_ref(),
        };
        let op = if out.operation.is_empty() {
            "-"
        } else {
            out.operation.as_str()
        };
        self.metrics.observe(out.service, op, outcome, elapsed);
        match out.result {
            Ok(body) => {
                tracing::debug!(
                    service = out.service,
                    operation = op,
                    request_id,
                    ms = elapsed * 1e3,
                    "ok"
                );
                into_response(out.protocol.encode_ok(op, body, &request_id, out.namespace))
            }
            Err(e) => {
                if e.is_server_fault() {
                    tracing::error!(service = out.service, operation = op, request_id, error = %e, "request failed");
                } else {
                    tracing::debug!(service = out.service, operation = op, request_id, error = %e, "request refused");
                }
                into_response(out.protocol.encode_error(&e, &request_id, out.namespace))
            }
        }
    }

    async fn serve(&self, req: Request, request_id: &str) -> Outcome {
        let (parts, body) = req.into_parts();
        let source_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let secure_transport = parts.extensions.get::<SecureTransport>().is_some();
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let content_type = header("content-type");
        let target = header("x-amz-target");
        let early = |protocol: Protocol, e: ServiceError| Outcome {
            service: "-",
            operation: String::new(),
            result: Err(e),
            protocol,
            namespace: "",
        };
        let body = match axum::body::to_bytes(body, self.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                let protocol = if target.is_none() && content_type.is_some_and(is_form) {
                    Protocol::AwsQuery
                } else {
                    Protocol::AwsJson1_1
                };
                let msg = format!(
                    "The request body is larger than {} bytes.",
                    self.max_body_bytes
                );
                return early(
                    protocol,
                    protocol.front_end_error(FrontEndFault::Serialization, msg),
                );
            }
        };
        let query = parts.uri.query().unwrap_or("");
        // Query requests carry their parameters in a form body, or in the query string of a GET.
        let form = if target.is_none() && content_type.is_some_and(is_form) {
            Some(parse_form(&body))
        } else if target.is_none() && query.contains("Action=") {
            Some(parse_form(query.as_bytes()))
        } else {
            None
        };
        let param = |name: &str| {
            form.as_ref()
                .and_then(|f| f.iter().find(|(k, _)| k == name))
                .map(|(_, v)| v.as_str())
        };
        let scope = header("authorization").and_then(gantry_auth::scope_of);
        let env = Envelope {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            target,
            content_type,
            smithy_protocol: header("smithy-protocol"),
            scope_service: scope.map(|s| s.1),
            query_version: param("Version"),
            query_action: param("Action"),
        };
        let (entry, protocol, operation) = match self.table.route(&env) {
            Route::Found {
                entry,
                protocol,
                operation,
            } => (entry, protocol, operation),
            Route::Unknown { protocol, message } => {
                return early(
                    protocol,
                    protocol.front_end_error(FrontEndFault::UnknownService, message),
                )
            }
        };
        let fail = |e: ServiceError| Outcome {
            service: entry.name,
            operation: operation.clone(),
            result: Err(e),
            protocol,
            namespace: entry.xml_namespace,
        };
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
            .collect();
        let request = RequestParts {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query,
            headers,
            body: &body,
        };
        let region_ok = |r: &str| match &entry.regions {
            Regions::Global => Ok(()),
            Regions::Served(list) if list.iter().any(|x| x == r) => Ok(()),
            Regions::Served(list) => Err(gantry_auth::wrong_region(r, &list.join("', '"))),
        };
        let verified = match gantry_auth::verify_scoped(
            &request,
            self.keys.as_ref(),
            entry.signing_name,
            unix_now(),
            &region_ok,
        ) {
            Ok(v) => v,
            Err(e) => return fail(protocol.error_from(e)),
        };
        let well_formed = match protocol {
            Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => {
                parts.method == axum::http::Method::POST && parts.uri.path() == "/"
            }
            Protocol::AwsQuery => parts.uri.path() == "/",
            Protocol::RpcV2Cbor => parts.method == axum::http::Method::POST,
        };
        if !well_formed || operation.is_empty() {
            let how = match protocol {
                Protocol::AwsQuery => "a form with Action and Version, POSTed to /",
                Protocol::RpcV2Cbor => "POST /service/<Service>/operation/<Operation>",
                _ => "POST / with an X-Amz-Target header",
            };
            return fail(protocol.front_end_error(
                FrontEndFault::UnknownOperation,
                format!(
                    "Unknown operation: the {} API is served as {}: {how}.",
                    entry.name,
                    protocol.as_str()
                ),
            ));
        }
        let principal = Principal::from_key(&self.account_id, &verified.identity);
        let context = AuthzContext {
            region: verified.region.clone(),
            source_ip,
            secure_transport,
            current_time: unix_now(),
        };
        let input = match (&form, protocol) {
            (Some(f), Protocol::AwsQuery) => Input::Query(f),
            (_, Protocol::RpcV2Cbor) => Input::Cbor(&body),
            _ => Input::Json(&body),
        };
        let call = Call {
            operation: &operation,
            protocol,
            input,
            gate: Gate::new(&principal, self.authorizer.as_ref(), &context, entry.denial),
            region: &verified.region,
            request_id,
        };
        let span = tracing::info_span!("request", service = entry.name, operation = %operation, request_id);
        let result = entry.dispatcher.dispatch(call).instrument(span).await;
        Outcome {
            service: entry.name,
            operation: operation.clone(),
            result,
            protocol,
            namespace: entry.xml_namespace,
        }
    }
}

fn is_form(content_type: &str) -> bool {
    content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
}

/// The front door as an axum fallback: `router.fallback(gantry_core::frontdoor::fallback(door))`.
pub fn fallback(
    door: Arc<FrontDoor>,
) -> impl Fn(Request) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
       + Clone
       + Send
       + Sync
       + 'static {
    move |req: Request| {
        let door = door.clone();
        Box::pin(async move { door.handle(req).await })
    }
}
