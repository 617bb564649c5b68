//! ECS's events, in EventBridge's envelope: `ECS Task State Change`, `ECS Container Instance
//! State Change`, `ECS Service Action` and `ECS Deployment State Change`, each with `version`,
//! `id`, `detail-type`, `source` (`aws.ecs`), `account`, `time`, `region`, `resources` and
//! `detail` as ECS documents them.
//!
//! They come from the records every committed write puts ([`EventBus::committed`]): a task whose
//! `lastStatus` or `desiredStatus` moved, an instance whose status moved, a service's new steady
//! state, a deployment whose rollout state moved. The bus keeps the last state it told of each,
//! so a record written again unchanged says nothing, and the newest events for late
//! subscribers (`gantry events`, `GET /gantry/v1/events`, a server-sent event stream).

use crate::state::{InstanceRecord, ServiceRecord, TaskRecord};
use gantry_store::Op;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// How many recent events a new subscriber can read back.
const RECENT: usize = 1000;

/// The fields of ECS's task and instance details that are times: ISO 8601 in events.
const TIMES: &[&str] = &[
    "createdAt",
    "startedAt",
    "stoppedAt",
    "stoppingAt",
    "pullStartedAt",
    "pullStoppedAt",
    "executionStoppedAt",
    "connectivityAt",
    "registeredAt",
];

/// What the bus last told of each record.
#[derive(Default)]
struct Told {
    tasks: HashMap<String, (String, String)>,
    instances: HashMap<String, String>,
    steady: HashMap<String, bool>,
    rollouts: HashMap<String, String>,
}

/// The server's events: a broadcast of each as it happens, and the newest ones.
pub struct EventBus {
    tx: broadcast::Sender<Arc<Value>>,
    recent: Mutex<VecDeque<Arc<Value>>>,
    told: Mutex<Told>,
    region: String,
    account: String,
}

fn iso(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms.rem_euclid(1000)
    )
}

/// `v` with its time fields (at any depth) as ISO 8601.
fn with_iso_times(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if TIMES.contains(&k.as_str()) {
                        if let Some(secs) = x.as_f64() {
                            *x = json!(iso(secs));
                            continue;
                        }
                    }
                    walk(x);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

impl EventBus {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> EventBus {
        let (tx, _) = broadcast::channel(RECENT);
        EventBus {
            tx,
            recent: Mutex::new(VecDeque::new()),
            told: Mutex::new(Told::default()),
            region: region.into(),
            account: account.into(),
        }
    }

    /// New events as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Value>> {
        self.tx.subscribe()
    }

    /// The newest events, oldest first.
    pub fn recent(&self) -> Vec<Arc<Value>> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn envelope(
        &self,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
        now: f64,
    ) -> Value {
        json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": detail_type,
            "source": "aws.ecs",
            "account": self.account,
            "time": iso(now).split('.').next().map(|s| format!("{s}Z")).unwrap_or_default(),
            "region": self.region,
            "resources": resources,
            "detail": detail,
        })
    }

    fn publish(&self, e: Value) {
        let e = Arc::new(e);
        if let Ok(mut r) = self.recent.lock() {
            if r.len() >= RECENT {
                r.pop_front();
            }
            r.push_back(e.clone());
        }
        // No subscriber is not an error.
        let _ = self.tx.send(e);
    }

    /// The events of a committed write's puts.
    pub fn committed(&self, ops: &[Op], now: f64) {
        for e in self.events_of(ops, now) {
            self.publish(e);
        }
    }

    /// The events `ops` make, given what was told before. Pure but for `told`.
    pub fn events_of(&self, ops: &[Op], now: f64) -> Vec<Value> {
        let mut out = Vec::new();
        let Ok(mut told) = self.told.lock() else {
            return out;
        };
        for op in ops {
            let Op::Put { key, value, .. } = op else {
                continue;
            };
            let kind = key.split('/').next().unwrap_or_default();
            match kind {
                "tasks" => {
                    let Ok(t) = serde_json::from_slice::<TaskRecord>(value) else {
                        continue;
                    };
                    let state = (
                        t.task.last_status.clone().unwrap_or_default(),
                        t.task.desired_status.clone().unwrap_or_default(),
                    );
                    if told.tasks.get(&t.id) == Some(&state) {
                        continue;
                    }
                    told.tasks.insert(t.id.clone(), state);
                    let mut detail =
                        with_iso_times(serde_json::to_value(&t.task).unwrap_or_default());
                    detail["updatedAt"] = json!(iso(now));
                    let arn = t.task.task_arn.clone().unwrap_or_default();
                    out.push(self.envelope("ECS Task State Change", vec![arn], detail, now));
                }
                "instances" => {
                    let Ok(i) = serde_json::from_slice::<InstanceRecord>(value) else {
                        continue;
                    };
                    let status = i.instance.status.clone().unwrap_or_default();
                    if told.instances.get(&i.id) == Some(&status) {
                        continue;
                    }
                    told.instances.insert(i.id.clone(), status);
                    let mut detail =
                        with_iso_times(serde_json::to_value(&i.instance).unwrap_or_default());
                    detail["updatedAt"] = json!(iso(now));
                    let arn = i
                        .instance
                        .container_instance_arn
                        .clone()
                        .unwrap_or_default();
                    out.push(self.envelope(
                        "ECS Container Instance State Change",
                        vec![arn],
                        detail,
                        now,
                    ));
                }
                "services" => {
                    let Ok(s) = serde_json::from_slice::<ServiceRecord>(value) else {
                        continue;
                    };
                    let arn = s.service.service_arn.clone().unwrap_or_default();
                    let cluster = s.service.cluster_arn.clone().unwrap_or_default();
                    let was_steady = told.steady.insert(arn.clone(), s.steady).unwrap_or(false);
                    if s.steady && !was_steady {
                        let detail = json!({"eventType": "INFO", "eventName": "SERVICE_STEADY_STATE",
                                            "clusterArn": cluster, "createdAt": iso(now)});
                        out.push(self.envelope(
                            "ECS Service Action",
                            vec![arn.clone()],
                            detail,
                            now,
                        ));
                    }
                    for d in s.service.deployments.iter().flatten() {
                        let (Some(id), Some(state)) = (&d.id, d.rollout_state) else {
                            continue;
                        };
                        let state = state.as_str().to_string();
                        if told.rollouts.get(id) == Some(&state) {
                            continue;
                        }
                        told.rollouts.insert(id.clone(), state.clone());
                        let name = match state.as_str() {
                            "COMPLETED" => "SERVICE_DEPLOYMENT_COMPLETED",
                            "FAILED" => "SERVICE_DEPLOYMENT_FAILED",
                            _ => "SERVICE_DEPLOYMENT_IN_PROGRESS",
                        };
                        let detail = json!({"eventType": if state == "FAILED" {"ERROR"} else {"INFO"},
                                            "eventName": name, "deploymentId": id, "updatedAt": iso(now),
                                            "reason": d.rollout_state_reason});
                        out.push(self.envelope(
                            "ECS Deployment State Change",
                            vec![arn.clone()],
                            detail,
                            now,
                        ));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// The puts of `ops` that events are made of (tasks, instances, services).
pub fn watched(ops: &[Op]) -> Vec<Op> {
    ops.iter()
        .filter(|op| match op {
            Op::Put { key, .. } => matches!(
                key.split('/').next(),
                Some("tasks" | "instances" | "services")
            ),
            _ => false,
        })
        .cloned()
        .collect()
}

/// Whether an event passes a subscriber's filters: its cluster (name or ARN) and detail-type.
pub fn wanted(e: &Value, cluster: Option<&str>, detail_type: Option<&str>) -> bool {
    let type_ok = detail_type.is_none_or(|d| e["detail-type"] == d);
    // The detail's cluster, or the one the resource's ARN names (`service/<cluster>/<name>`:
    // deployment events carry no clusterArn).
    let cluster_ok = cluster.is_none_or(|c| {
        let name = c.rsplit(":cluster/").next().unwrap_or(c);
        let arn = e["detail"]["clusterArn"].as_str().unwrap_or_default();
        let of_resource = e["resources"][0]
            .as_str()
            .and_then(|r| r.split(':').nth(5))
            .and_then(|r| r.split('/').nth(1));
        arn.ends_with(&format!(":cluster/{name}")) || of_resource == Some(name)
    });
    type_ok && cluster_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::model::Task;

    fn put(key: &str, v: &impl serde::Serialize) -> Op {
        Op::Put {
            key: key.into(),
            value: serde_json::to_vec(v).unwrap(),
            lease: None,
        }
    }

    fn task(last: &str, desired: &str) -> TaskRecord {
        let mut t: TaskRecord = serde_json::from_value(json!({
            "cluster": "default", "id": "t1", "instance": "i1", "task": {},
            "demand_cpu": 0, "demand_memory": 0}))
        .unwrap();
        t.task = Task {
            task_arn: Some("arn:aws:ecs:r:1:task/default/t1".into()),
            cluster_arn: Some("arn:aws:ecs:r:1:cluster/default".into()),
            last_status: Some(last.into()),
            desired_status: Some(desired.into()),
            created_at: Some(1_700_000_000.25),
            ..Task::default()
        };
        t
    }

    #[test]
    fn a_task_tells_each_state_once_in_eventbridges_envelope() {
        let bus = EventBus::new("us-east-1", "000000000000");
        let ops = vec![put("tasks/t1", &task("PENDING", "RUNNING"))];
        let e = bus.events_of(&ops, 1_700_000_001.0);
        assert_eq!(e.len(), 1);
        let e = &e[0];
        assert_eq!(e["detail-type"], "ECS Task State Change");
        assert_eq!(
            (e["source"].as_str(), e["version"].as_str()),
            (Some("aws.ecs"), Some("0"))
        );
        assert_eq!(e["resources"], json!(["arn:aws:ecs:r:1:task/default/t1"]));
        assert_eq!(e["time"], "2023-11-14T22:13:21Z");
        assert_eq!(e["detail"]["createdAt"], "2023-11-14T22:13:20.250Z");
        assert_eq!(e["detail"]["lastStatus"], "PENDING");
        // The same state again says nothing; a new one does.
        assert!(bus.events_of(&ops, 2.0).is_empty());
        let next = vec![put("tasks/t1", &task("RUNNING", "RUNNING"))];
        assert_eq!(bus.events_of(&next, 3.0).len(), 1);
        assert!(bus
            .events_of(&[put("taskdefs/x", &json!({}))], 3.0)
            .is_empty());
    }

    #[test]
    fn filters_by_cluster_name_or_arn_and_detail_type() {
        let e = json!({"detail-type": "ECS Task State Change",
                       "detail": {"clusterArn": "arn:aws:ecs:r:1:cluster/prod"}});
        assert!(wanted(&e, Some("prod"), None));
        assert!(wanted(
            &e,
            Some("arn:aws:ecs:r:1:cluster/prod"),
            Some("ECS Task State Change")
        ));
        assert!(!wanted(&e, Some("dev"), None));
        assert!(!wanted(&e, None, Some("ECS Service Action")));
        let d = json!({"detail-type": "ECS Deployment State Change", "detail": {},
                       "resources": ["arn:aws:ecs:r:1:service/prod/web"]});
        assert!(wanted(&d, Some("prod"), None) && !wanted(&d, Some("dev"), None));
    }
}
