//! `gantry events [-f]`: ECS's events (EventBridge's envelope) from the server's event stream,
//! as a line each, or as JSON.

use crate::client::EcsClient;
use serde_json::Value;

/// What `gantry events` was asked.
pub struct Request {
    pub cluster: Option<String>,
    pub detail_type: Option<String>,
    pub follow: bool,
    pub json: bool,
}

/// A form-encoded query string of `pairs`.
fn query(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let mut sorted: Vec<_> = pairs.to_vec();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One line for an event: time, type, the resource, and what changed.
fn line(e: &Value) -> String {
    let d = &e["detail"];
    let what = match e["detail-type"].as_str().unwrap_or_default() {
        "ECS Task State Change" => format!(
            "{} (desired {}){}",
            d["lastStatus"].as_str().unwrap_or("?"),
            d["desiredStatus"].as_str().unwrap_or("?"),
            d["stoppedReason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        "ECS Container Instance State Change" => format!(
            "{} (agent connected: {})",
            d["status"].as_str().unwrap_or("?"),
            d["agentConnected"]
        ),
        _ => d["eventName"].as_str().unwrap_or("?").to_string(),
    };
    format!(
        "{} {} {} {what}",
        e["time"].as_str().unwrap_or_default(),
        e["detail-type"].as_str().unwrap_or_default(),
        e["resources"][0].as_str().unwrap_or_default()
    )
}

pub async fn run(c: &EcsClient, r: Request) -> anyhow::Result<()> {
    let mut pairs = vec![
        ("recent", "true"),
        ("follow", if r.follow { "true" } else { "false" }),
    ];
    if let Some(cl) = &r.cluster {
        pairs.push(("cluster", cl));
    }
    if let Some(d) = &r.detail_type {
        pairs.push(("detail-type", d));
    }
    let mut resp = c.get_gantry("/gantry/v1/events", &query(&pairs)).await?;
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        pending.extend_from_slice(&chunk);
        while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=nl).collect();
            let text = String::from_utf8_lossy(&raw);
            let Some(data) = text.trim_end().strip_prefix("data:") else {
                continue;
            };
            let Ok(e) = serde_json::from_str::<Value>(data.trim_start()) else {
                continue;
            };
            if r.json {
                println!("{e}");
            } else {
                println!("{}", line(&e));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded_and_sorted_for_signing() {
        assert_eq!(
            query(&[
                ("recent", "true"),
                ("cluster", "arn:aws:ecs:r:1:cluster/a b")
            ]),
            "cluster=arn%3Aaws%3Aecs%3Ar%3A1%3Acluster%2Fa%20b&recent=true"
        );
    }

    #[test]
    fn task_events_read_as_a_line() {
        let e = serde_json::json!({"time": "t", "detail-type": "ECS Task State Change",
            "resources": ["arn"], "detail": {"lastStatus": "STOPPED", "desiredStatus": "STOPPED",
            "stoppedReason": "Essential container in task exited"}});
        assert_eq!(
            line(&e),
            "t ECS Task State Change arn STOPPED (desired STOPPED): Essential container in task exited"
        );
    }
}
