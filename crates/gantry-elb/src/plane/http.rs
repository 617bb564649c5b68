//! The application load balancer's proxy: HTTP/1.1 from clients (and HTTP/2 on HTTPS
//! listeners, by ALPN), keep-alive pools to targets,
//! X-Forwarded-For/-Proto/-Port, the group's algorithm, fixed responses and redirects.

use super::{first_action, weighted, How, Picker, Upstream};
use crate::model::Action;
use crate::model::{Listener, RequestFacts, Resource, Target};
use crate::Elb;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

type Body = BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html"),
    );
    r
}

/// ELB's answer when there is nowhere to send a request.
fn unavailable() -> Response<Body> {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "503 Service Temporarily Unavailable",
    )
}

/// Headers that belong to one hop, not to the request.
const HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
];

pub(super) async fn serve(
    elb: Arc<Elb>,
    arn: String,
    socket: tokio::net::TcpListener,
    client: Upstream,
    picker: Arc<Picker>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let local_port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
    let scheme = if tls.is_some() { "https" } else { "http" };
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(listener = %arn, error = %e, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (elb, arn, client, picker) = (elb.clone(), arn.clone(), client.clone(), picker.clone());
        let tls = tls.clone();
        let front = Front {
            peer,
            port: local_port,
            scheme,
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (elb, arn, client, picker) =
                    (elb.clone(), arn.clone(), client.clone(), picker.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(
                        handle(&elb, &arn, req, front, &client, &picker).await,
                    )
                }
            });
            let Some(tls) = tls else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                return;
            };
            let Ok(stream) = tls.accept(stream).await else {
                return;
            };
            // HTTP/2 when the client asked for it in ALPN, HTTP/1.1 otherwise.
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        });
    }
}

/// Where a request came in: the client, and the listener's port and scheme.
#[derive(Debug, Clone, Copy)]
struct Front {
    peer: SocketAddr,
    port: u16,
    scheme: &'static str,
}

async fn handle(
    elb: &Elb,
    arn: &str,
    req: Request<Incoming>,
    front: Front,
    client: &Upstream,
    picker: &Picker,
) -> Response<Body> {
    // One view of the records serves the whole request.
    let all = elb.snapshot();
    let Some(Resource::Listener(l)) = all.get(arn) else {
        return unavailable();
    };
    let action = chosen_action(&all, l, &req);
    match action.as_ref() {
        Some(Action::Forward { groups }) => {
            let Some(group) = weighted(groups) else {
                return unavailable();
            };
            let (least, sticky, slow_start) = match all.get(group) {
                Some(Resource::Group(g)) => (
                    g.least_outstanding(),
                    g.sticky_cookie_seconds(),
                    g.slow_start_seconds(),
                ),
                _ => (false, None, None),
            };
            let route = Route {
                group,
                least,
                sticky,
                slow_start: slow_start.map(|s| elb.settings().second * s),
            };
            forward(elb, route, req, front, client, picker).await
        }
        Some(Action::FixedResponse {
            status,
            content_type,
            body,
        }) => {
            let mut r = text(
                StatusCode::from_u16(*status).unwrap_or(StatusCode::OK),
                body.as_deref().unwrap_or_default(),
            );
            if let Some(v) = content_type
                .as_deref()
                .and_then(|c| hyper::header::HeaderValue::from_str(c).ok())
            {
                r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
            }
            r
        }
        Some(Action::Redirect {
            protocol,
            host,
            port: to_port,
            path,
            query,
            status,
        }) => {
            let own_host = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().host())
                .map(|h| h.split(':').next().unwrap_or(h).to_string())
                .unwrap_or_default();
            let uri = req.uri();
            let fill = |s: &str| {
                s.replace("#{protocol}", front.scheme)
                    .replace("#{host}", &own_host)
                    .replace("#{port}", &front.port.to_string())
                    .replace("#{path}", uri.path().trim_start_matches('/'))
                    .replace("#{query}", uri.query().unwrap_or_default())
            };
            let scheme = fill(protocol).to_ascii_lowercase();
            let q = fill(query);
            let location = format!(
                "{scheme}://{}:{}{}{}",
                fill(host),
                fill(to_port),
                fill(path),
                if q.is_empty() {
                    String::new()
                } else {
                    format!("?{q}")
                }
            );
            let code = if status == "HTTP_301" {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::FOUND
            };
            let mut r = text(code, "");
            if let Ok(v) = hyper::header::HeaderValue::from_str(&location) {
                r.headers_mut().insert(hyper::header::LOCATION, v);
            }
            r
        }
        None => unavailable(),
    }
}

/// The action for a request: the first rule (by priority) whose conditions it all meets, or
/// the listener's default.
fn chosen_action(
    all: &BTreeMap<String, Resource>,
    l: &Listener,
    req: &Request<Incoming>,
) -> Option<Action> {
    let mut rules: Vec<&crate::model::Rule> = all
        .values()
        .filter_map(|r| match r {
            Resource::Rule(r) if r.listener == l.arn => Some(r),
            _ => None,
        })
        .collect();
    if !rules.is_empty() {
        rules.sort_by_key(|r| r.priority);
        let headers = req.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let facts = RequestFacts {
            path: req.uri().path(),
            // HTTP/2 carries the host as the `:authority`, HTTP/1.1 in `Host`.
            host: header("host")
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or_default(),
            query: req.uri().query().unwrap_or_default(),
            header: &header,
        };
        if let Some(r) = rules
            .iter()
            .find(|r| r.conditions.iter().all(|c| c.matches(&facts)))
        {
            return r.actions.first().cloned();
        }
    }
    first_action(l).cloned()
}

/// How a forwarded request chooses its target within a group.
struct Route<'a> {
    group: &'a str,
    least: bool,
    /// The lifetime of the stickiness cookie, when the group is sticky.
    sticky: Option<u32>,
    /// The group's slow-start window.
    slow_start: Option<std::time::Duration>,
}

/// The stickiness cookies, as ALB names them (the second for cross-origin requests).
const STICKY_COOKIES: [&str; 2] = ["AWSALB", "AWSALBCORS"];

/// The opaque value of a stickiness cookie for a target of a group: a digest, so that the
/// cookie neither shows the target's address nor names a target of another group.
/// Written as 16 hex digits.
fn sticky_token(group: &str, t: &Target) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (group, &t.id, t.port).hash(&mut h);
    h.finish()
}

/// The stickiness token a request carries, if any.
fn sticky_cookie(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| STICKY_COOKIES.contains(k))
        .and_then(|(_, v)| u64::from_str_radix(v, 16).ok())
}

async fn forward(
    elb: &Elb,
    route: Route<'_>,
    req: Request<Incoming>,
    front: Front,
    client: &Upstream,
    picker: &Picker,
) -> Response<Body> {
    let Route {
        group,
        least,
        sticky,
        slow_start,
    } = route;
    let held = sticky.and_then(|_| sticky_cookie(req.headers()));
    // Without a cookie, no digest is computed.
    let holds = |t: &Target| held.is_some_and(|h| h == sticky_token(group, t));
    let how = How {
        least_outstanding: least,
        sticky: &holds,
        source: None,
        slow_start,
    };
    let Some((target, _flight)) = picker.pick(elb, group, how) else {
        return unavailable();
    };
    let (mut parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("http://{}:{}{path}", target.id, target.port).parse() else {
        return text(StatusCode::BAD_REQUEST, "400 Bad Request");
    };
    // Targets are spoken to in HTTP/1.1, whatever the client spoke; an HTTP/2 request's
    // host becomes the `Host` header.
    if parts.version != hyper::Version::HTTP_11 && parts.version != hyper::Version::HTTP_10 {
        if let Some(v) = parts
            .uri
            .authority()
            .and_then(|a| hyper::header::HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.entry(hyper::header::HOST).or_insert(v);
        }
        parts.version = hyper::Version::HTTP_11;
    }
    parts.uri = uri;
    for h in HOP {
        parts.headers.remove(h);
    }
    let forwarded_for = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(before) => format!("{before}, {}", front.peer.ip()),
        None => front.peer.ip().to_string(),
    };
    for (k, v) in [
        ("x-forwarded-for", forwarded_for),
        ("x-forwarded-proto", front.scheme.into()),
        ("x-forwarded-port", front.port.to_string()),
    ] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            parts.headers.insert(k, v);
        }
    }
    let upstream = Request::from_parts(parts, body.boxed());
    match client.request(upstream).await {
        Ok(r) => {
            let mut r = r.map(BodyExt::boxed);
            if let Some(secs) = sticky {
                let token = sticky_token(group, &target);
                for (name, extra) in STICKY_COOKIES.iter().zip(["", "; SameSite=None; Secure"]) {
                    let cookie = format!("{name}={token:016x}; Max-Age={secs}; Path=/{extra}");
                    if let Ok(v) = hyper::header::HeaderValue::from_str(&cookie) {
                        r.headers_mut().append(hyper::header::SET_COOKIE, v);
                    }
                }
            }
            r
        }
        Err(e) => {
            tracing::debug!(target = %target.id, port = target.port, error = %e, "a target failed a request");
            text(StatusCode::BAD_GATEWAY, "502 Bad Gateway")
        }
    }
}
