//! The data plane: every listener's socket on its load balancer's address, the HTTP proxy
//! (`http`) and TCP forwarder (`tcp`) behind them, and the health checker (`check`). It follows
//! the records: each change to them is applied at once.

mod check;
mod http;
mod tcp;

use crate::model::{Action, Listener, Protocol, Resource, Target};
use crate::Elb;
use http_body_util::combinators::BoxBody;
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The client targets are reached with: keep-alive connections, pooled per target.
pub(crate) type Upstream = Client<HttpConnector, BoxBody<Bytes, hyper::Error>>;

fn upstream() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    connector.set_nodelay(true);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// Chooses targets: round robin per group, or the one with the fewest requests in flight.
#[derive(Default)]
pub(crate) struct Picker {
    turns: Mutex<HashMap<String, usize>>,
    in_flight: Mutex<HashMap<(String, Target), usize>>,
}

/// A request in flight to a target; counted down when dropped.
pub(crate) struct Flight<'a> {
    picker: &'a Picker,
    key: (String, Target),
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut m = match self.picker.in_flight.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = m.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

impl Picker {
    /// A target of `group` for the next request: among those it may route to, the first that
    /// `sticky` holds to if there is one.
    pub fn pick(
        &self,
        elb: &Elb,
        group: &str,
        least_outstanding: bool,
        sticky: impl Fn(&Target) -> bool,
    ) -> Option<(Target, Flight<'_>)> {
        let targets = elb.health().routable(group);
        if targets.is_empty() {
            return None;
        }
        let mut flights = match self.in_flight.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let mut turns = match self.turns.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let turn = turns.entry(group.to_string()).or_default();
        *turn = turn.wrapping_add(1);
        let chosen = if let Some(t) = targets.iter().find(|t| sticky(t)) {
            t.clone()
        } else if least_outstanding {
            // Fewest in flight; ties go round robin.
            let n = targets.len();
            (0..n)
                .map(|i| &targets[(*turn + i) % n])
                .min_by_key(|t| {
                    flights
                        .get(&(group.to_string(), (*t).clone()))
                        .copied()
                        .unwrap_or(0)
                })
                .cloned()?
        } else {
            targets[*turn % targets.len()].clone()
        };
        let key = (group.to_string(), chosen.clone());
        *flights.entry(key.clone()).or_default() += 1;
        Some((chosen, Flight { picker: self, key }))
    }
}

/// A forward action's group for one request, by weight.
pub(crate) fn weighted(groups: &[(String, u32)]) -> Option<&str> {
    let total: u32 = groups.iter().map(|g| g.1).sum();
    if total == 0 {
        return groups.first().map(|g| g.0.as_str());
    }
    let mut roll = rand::random::<u32>() % total;
    for (arn, w) in groups {
        if roll < *w {
            return Some(arn);
        }
        roll -= w;
    }
    groups.last().map(|g| g.0.as_str())
}

/// The listener `arn` and its load balancer's address, as the records have them now.
pub(crate) fn listener(elb: &Elb, arn: &str) -> Option<Listener> {
    match elb.snapshot().get(arn) {
        Some(Resource::Listener(l)) => Some(l.clone()),
        _ => None,
    }
}

/// The first action of a listener.
pub(crate) fn first_action(l: &Listener) -> Option<&Action> {
    l.actions.first()
}

/// Where a listener listens: address, port, protocol.
type Socket = (String, u16, Protocol);

/// Runs the data plane for as long as the process lives.
pub async fn run(elb: Arc<Elb>) {
    let client = upstream();
    let picker = Arc::new(Picker::default());
    tokio::spawn(check::run(elb.clone(), client.clone()));
    let mut changes = elb.changes();
    let mut running: HashMap<String, (Socket, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        let all = elb.snapshot();
        let mut wanted: HashMap<String, Socket> = HashMap::new();
        for r in all.values() {
            let Resource::Listener(l) = r else { continue };
            if let Some(Resource::Balancer(b)) = all.get(&l.balancer) {
                wanted.insert(l.arn.clone(), (b.address.clone(), l.port, l.protocol));
            }
        }
        running.retain(|arn, (at, task)| {
            let keep = wanted.get(arn) == Some(at);
            if !keep {
                task.abort();
            }
            keep
        });
        let mut failed = false;
        for (arn, at) in wanted {
            if running.contains_key(&arn) {
                continue;
            }
            let socket = match tokio::net::TcpListener::bind((at.0.as_str(), at.1)).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(listener = %arn, address = %at.0, port = at.1, error = %e, "a listener cannot listen; trying again");
                    failed = true;
                    continue;
                }
            };
            tracing::info!(listener = %arn, address = %at.0, port = at.1, protocol = at.2.as_str(), "listening");
            let task = match at.2 {
                Protocol::Http => tokio::spawn(http::serve(
                    elb.clone(),
                    arn.clone(),
                    socket,
                    client.clone(),
                    picker.clone(),
                )),
                Protocol::Tcp => {
                    tokio::spawn(tcp::serve(elb.clone(), arn.clone(), socket, picker.clone()))
                }
            };
            running.insert(arn, (at, task));
        }
        let wait = if failed {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_share_requests() {
        let groups = vec![
            ("a".to_string(), 3),
            ("b".to_string(), 1),
            ("c".to_string(), 0),
        ];
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for _ in 0..4000 {
            *counts.entry(weighted(&groups).unwrap()).or_default() += 1;
        }
        assert!(counts["a"] > counts["b"] * 2, "{counts:?}");
        assert!(!counts.contains_key("c"));
    }
}
