//! The data plane: every listener's socket on its load balancer's address, the HTTP proxy
//! (`http`) and TCP forwarder (`tcp`) behind them, and the health checker (`check`). It follows
//! the records: each change to them is applied at once.

mod check;
mod http;
mod tcp;
mod tls;

use crate::model::{Action, Listener, Protocol, Resource, Target};
use crate::Elb;
use http_body_util::combinators::BoxBody;
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// How one request (or connection) chooses its target within a group.
pub(crate) struct How<'a> {
    pub least_outstanding: bool,
    /// The target a stickiness cookie names: taken while it is routable.
    pub sticky: &'a dyn Fn(&Target) -> bool,
    /// A digest of the client's address (`source_ip` stickiness): the target is chosen by
    /// rendezvous hashing, so a client keeps its target while that target stays routable, and
    /// only the clients of a target that goes move.
    pub source: Option<u64>,
    /// Slow start: a newly healthy target's share grows linearly over this long.
    pub slow_start: Option<Duration>,
}

/// The index of the target rendezvous hashing gives `key`: the highest digest of the pair.
fn rendezvous(key: u64, targets: &[(Target, Option<Instant>)]) -> Option<usize> {
    use std::hash::{Hash, Hasher};
    (0..targets.len()).max_by_key(|&i| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (key, &targets[i].0.id, targets[i].0.port).hash(&mut h);
        h.finish()
    })
}

/// Each target's weight under slow start: the share of the window it has been healthy for
/// (at least a thousandth, so that a group that is all new still answers), 1 after it.
fn slow_start_weights(
    targets: &[(Target, Option<Instant>)],
    window: Duration,
    now: Instant,
) -> Vec<f64> {
    targets
        .iter()
        .map(|(_, since)| match since {
            Some(s) if !window.is_zero() => (now.saturating_duration_since(*s).as_secs_f64()
                / window.as_secs_f64())
            .clamp(0.001, 1.0),
            _ => 1.0,
        })
        .collect()
}

/// A weighted random index (`roll` in `0..1`).
fn by_weight(weights: &[f64], roll: f64) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    let mut left = roll * total;
    for (i, w) in weights.iter().enumerate() {
        if left < *w {
            return Some(i);
        }
        left -= w;
    }
    weights.len().checked_sub(1)
}

impl Picker {
    /// A target of `group` for the next request, as `how` says.
    pub fn pick(&self, elb: &Elb, group: &str, how: How<'_>) -> Option<(Target, Flight<'_>)> {
        let targets = elb.health().routable_since(group);
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
        let ramping = how
            .slow_start
            .map(|w| slow_start_weights(&targets, w, Instant::now()));
        let chosen = if let Some(t) = targets.iter().find(|t| (how.sticky)(&t.0)) {
            t.0.clone()
        } else if let Some(i) = how.source.and_then(|k| rendezvous(k, &targets)) {
            targets[i].0.clone()
        } else if let Some(i) = ramping
            .filter(|w| w.iter().any(|w| *w < 1.0))
            .and_then(|w| by_weight(&w, rand::random::<f64>()))
        {
            targets[i].0.clone()
        } else if how.least_outstanding {
            // Fewest in flight; ties go round robin.
            let n = targets.len();
            (0..n)
                .map(|i| &targets[(*turn + i) % n].0)
                .min_by_key(|t| {
                    flights
                        .get(&(group.to_string(), (*t).clone()))
                        .copied()
                        .unwrap_or(0)
                })
                .cloned()?
        } else {
            targets[*turn % targets.len()].0.clone()
        };
        let key = (group.to_string(), chosen.clone());
        *flights.entry(key.clone()).or_default() += 1;
        Some((chosen, Flight { picker: self, key }))
    }
}

/// A digest of a value (a client's address), for rendezvous hashing.
pub(crate) fn digest(v: &impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
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

/// Where a listener listens: address, port, protocol, and whether it is HTTPS (its
/// certificates are read at each handshake).
type Socket = (String, u16, Protocol, bool);

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
                wanted.insert(
                    l.arn.clone(),
                    (b.address.clone(), l.port, l.protocol, l.tls.is_some()),
                );
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
            let tls = match at.3 {
                false => None,
                true => match tls::acceptor(elb.clone(), &arn) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        tracing::warn!(listener = %arn, error = %e, "an HTTPS listener cannot serve; trying again");
                        failed = true;
                        continue;
                    }
                },
            };
            let socket = match tokio::net::TcpListener::bind((at.0.as_str(), at.1)).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(listener = %arn, address = %at.0, port = at.1, error = %e, "a listener cannot listen; trying again");
                    failed = true;
                    continue;
                }
            };
            let shown = if at.3 { "HTTPS" } else { at.2.as_str() };
            tracing::info!(listener = %arn, address = %at.0, port = at.1, protocol = shown, "listening");
            let task = match at.2 {
                Protocol::Http => tokio::spawn(http::serve(
                    elb.clone(),
                    arn.clone(),
                    socket,
                    client.clone(),
                    picker.clone(),
                    tls,
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

    fn targets(n: u16) -> Vec<(Target, Option<Instant>)> {
        (0..n)
            .map(|p| {
                (
                    Target {
                        id: "10.0.0.1".into(),
                        port: 8000 + p,
                    },
                    None,
                )
            })
            .collect()
    }

    #[test]
    fn source_addresses_keep_their_target_unless_it_goes() {
        let all = targets(4);
        let mut moved = 0;
        for key in 0..1000u64 {
            let i = rendezvous(key, &all).unwrap();
            assert_eq!(rendezvous(key, &all), Some(i), "stable");
            let mut fewer = all.clone();
            let gone = fewer.remove(3);
            let j = rendezvous(key, &fewer).unwrap();
            if all[i].0 != gone.0 {
                assert_eq!(
                    fewer[j].0, all[i].0,
                    "only the clients of the target that went move"
                );
            } else {
                moved += 1;
            }
        }
        // About a quarter of the clients were on the target that went.
        assert!((150..350).contains(&moved), "{moved}");
    }

    #[test]
    fn slow_start_ramps_a_new_targets_share_linearly() {
        let now = Instant::now();
        let window = Duration::from_secs(100);
        let mut all = targets(3);
        all[0].1 = Some(now - Duration::from_secs(500));
        all[1].1 = Some(now - Duration::from_secs(25));
        all[2].1 = Some(now);
        let w = slow_start_weights(&all, window, now);
        assert_eq!(w[0], 1.0);
        assert!((w[1] - 0.25).abs() < 1e-9, "{w:?}");
        assert!(w[2] <= 0.001 + 1e-12);
        let mut counts = [0u32; 3];
        for k in 0..10_000 {
            counts[by_weight(&w, f64::from(k) / 10_000.0).unwrap()] += 1;
        }
        assert!(
            counts[0] > counts[1] * 3 && counts[1] > counts[2] * 50,
            "{counts:?}"
        );
        assert_eq!(
            slow_start_weights(&all, window, now + Duration::from_secs(200)),
            [1.0, 1.0, 1.0]
        );
    }

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
