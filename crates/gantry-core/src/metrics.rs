//! Request metrics in the Prometheus text format, served at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default, Clone, Copy)]
struct Counter {
    count: u64,
    seconds: f64,
}

type Key = (String, String, String);

/// Requests by service, operation and outcome, with their total latency.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<Key, Counter>>,
}

impl Metrics {
    /// Records one request: its service and operation (or `-`), its outcome (`ok` or the
    /// error's code) and how long it took.
    pub fn observe(&self, service: &str, operation: &str, outcome: &str, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            let c = m
                .entry((
                    service.to_string(),
                    operation.to_string(),
                    outcome.to_string(),
                ))
                .or_default();
            c.count += 1;
            c.seconds += seconds;
        }
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let snapshot: Vec<(Key, Counter)> = match self.requests.lock() {
            Ok(m) => m.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            Err(_) => Vec::new(),
        };
        let mut out = String::new();
        out.push_str(
            "# HELP gantry_api_requests_total API requests by service, operation and outcome.\n",
        );
        out.push_str("# TYPE gantry_api_requests_total counter\n");
        for ((service, op, outcome), c) in &snapshot {
            let _ = writeln!(
                out,
                "gantry_api_requests_total{{service=\"{service}\",operation=\"{op}\",outcome=\"{outcome}\"}} {}",
                c.count
            );
        }
        out.push_str("# HELP gantry_api_request_seconds_total Time spent serving API requests.\n");
        out.push_str("# TYPE gantry_api_request_seconds_total counter\n");
        for ((service, op, outcome), c) in &snapshot {
            let _ = writeln!(
                out,
                "gantry_api_request_seconds_total{{service=\"{service}\",operation=\"{op}\",outcome=\"{outcome}\"}} {:.6}",
                c.seconds
            );
        }
        out
    }
}
