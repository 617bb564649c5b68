//! `gantry logs [-f] TASK|SERVICE`: the awslogs output of every container of a task (or of every
//! task of a service), read from gantry's CloudWatch Logs, lines prefixed by task and container.

use crate::client::EcsClient;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// One container's log stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Source {
    task_id: String,
    container: String,
    group: String,
    stream: String,
}

/// What `gantry logs` was asked.
pub struct Request {
    pub target: String,
    pub cluster: String,
    pub follow: bool,
    pub since: Duration,
    pub json: bool,
}

fn is_task_ref(target: &str) -> bool {
    target.contains(":task/")
        || (target.len() == 32 && target.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The streams of `target`'s containers; notes containers that do not log with awslogs.
async fn sources(
    c: &EcsClient,
    r: &Request,
    noted: &mut HashSet<String>,
) -> anyhow::Result<Vec<Source>> {
    let task_arns: Vec<Value> = if is_task_ref(&r.target) {
        vec![json!(r.target)]
    } else {
        let found = c
            .call(
                "DescribeServices",
                json!({"cluster": r.cluster, "services": [r.target]}),
            )
            .await?;
        if found["services"].as_array().is_none_or(|s| s.is_empty()) {
            anyhow::bail!(
                "no task or service {:?} in the cluster {:?}",
                r.target,
                r.cluster
            );
        }
        let listed = c
            .call(
                "ListTasks",
                json!({"cluster": r.cluster, "serviceName": r.target}),
            )
            .await?;
        listed["taskArns"].as_array().cloned().unwrap_or_default()
    };
    if task_arns.is_empty() {
        return Ok(Vec::new());
    }
    let described = c
        .call(
            "DescribeTasks",
            json!({"cluster": r.cluster, "tasks": task_arns}),
        )
        .await?;
    let tasks = described["tasks"].as_array().cloned().unwrap_or_default();
    if tasks.is_empty() && is_task_ref(&r.target) {
        anyhow::bail!("no task {:?} in the cluster {:?}", r.target, r.cluster);
    }
    let mut defs: HashMap<String, Value> = HashMap::new();
    let mut out = Vec::new();
    for t in tasks {
        let arn = t["taskArn"].as_str().unwrap_or_default();
        let task_id = arn.rsplit('/').next().unwrap_or_default().to_string();
        let td_arn = t["taskDefinitionArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !defs.contains_key(&td_arn) {
            let d = c
                .call("DescribeTaskDefinition", json!({"taskDefinition": td_arn}))
                .await?;
            defs.insert(td_arn.clone(), d["taskDefinition"].clone());
        }
        let td = &defs[&td_arn];
        for cd in td["containerDefinitions"].as_array().into_iter().flatten() {
            let name = cd["name"].as_str().unwrap_or_default().to_string();
            let log = &cd["logConfiguration"];
            if log["logDriver"] != "awslogs" {
                if noted.insert(format!("{task_id}/{name}")) {
                    eprintln!(
                        "gantry: {task_id}/{name} logs with {}, not awslogs: read it with `docker logs` on its host",
                        log["logDriver"].as_str().unwrap_or("Docker's default driver")
                    );
                }
                continue;
            }
            let Some(group) = log["options"]["awslogs-group"].as_str() else {
                continue;
            };
            let stream = match log["options"]["awslogs-stream-prefix"].as_str() {
                Some(p) if !p.is_empty() => format!("{p}/{name}/{task_id}"),
                _ => {
                    // Without a prefix the stream is the container's runtime id.
                    let id = t["containers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|x| x["name"] == name.as_str())
                        .and_then(|x| x["runtimeId"].as_str());
                    match id {
                        Some(id) => id.to_string(),
                        None => continue,
                    }
                }
            };
            out.push(Source {
                task_id: task_id.clone(),
                container: name,
                group: group.to_string(),
                stream,
            });
        }
    }
    Ok(out)
}

/// Prints the target's lines (then, with `follow`, new ones as they come) until interrupted.
pub async fn run(c: &EcsClient, r: Request) -> anyhow::Result<()> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let since = now_ms - r.since.as_millis() as i64;
    let mut tokens: BTreeMap<Source, Option<String>> = BTreeMap::new();
    let mut noted = HashSet::new();
    let mut round = 0u64;
    loop {
        // A service's tasks come and go: look again every few rounds.
        if round.is_multiple_of(5) {
            for s in sources(c, &r, &mut noted).await? {
                tokens.entry(s).or_insert(None);
            }
        }
        round += 1;
        let mut lines: Vec<(i64, String, String, String)> = Vec::new();
        for (s, token) in tokens.iter_mut() {
            loop {
                let mut body = json!({"logGroupName": s.group, "logStreamName": s.stream,
                                      "startFromHead": true, "startTime": since});
                if let Some(t) = token.as_ref() {
                    body["nextToken"] = json!(t);
                }
                let got = match c.call_logs("GetLogEvents", body).await {
                    Ok(g) => g,
                    // The stream appears with the container's first line.
                    Err(e) if e.to_string().contains("ResourceNotFoundException") => break,
                    Err(e) => return Err(e),
                };
                let events = got["events"].as_array().cloned().unwrap_or_default();
                for e in &events {
                    lines.push((
                        e["timestamp"].as_i64().unwrap_or_default(),
                        s.task_id.clone(),
                        s.container.clone(),
                        e["message"].as_str().unwrap_or_default().to_string(),
                    ));
                }
                let next = got["nextForwardToken"].as_str().map(str::to_string);
                let done = events.is_empty() || next == *token;
                *token = next;
                if done {
                    break;
                }
            }
        }
        lines.sort();
        for (ts, task, container, message) in lines {
            if r.json {
                println!(
                    "{}",
                    json!({"timestamp": ts, "task": task, "container": container, "message": message})
                );
            } else {
                let short: String = task.chars().take(12).collect();
                println!("{short}/{container} {message}");
            }
        }
        if !r.follow {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_references_are_told_from_service_names() {
        assert!(is_task_ref(
            "arn:aws:ecs:us-east-1:0:task/default/0123456789abcdef0123456789abcdef"
        ));
        assert!(is_task_ref("0123456789abcdef0123456789abcdef"));
        assert!(!is_task_ref("web"));
    }
}
