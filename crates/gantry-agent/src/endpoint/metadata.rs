//! Task metadata (v3 and v4) in ECS's shapes and field names, from what the agent knows of a
//! task and what the runtime reports of its containers. Pure.

use crate::registry::{ContainerEntry, TaskEntry};
use crate::runtime::{time_rfc3339, Observed};
use gantry_api::model::{LaunchType, NetworkMode, Tag};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// What the instance adds to every task's metadata.
#[derive(Debug, Clone, Default)]
pub struct InstanceFacts {
    pub availability_zone: String,
    /// The host's address (host-mode tasks' `IPv4Addresses`).
    pub host_ip: Option<String>,
    pub tags: Vec<Tag>,
}

/// Which endpoint version answers: v3 has no `ContainerARN`, `LogDriver`, `LogOptions`, and
/// names fewer network fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V4,
}

fn rfc3339_of_secs(secs: f64) -> String {
    let whole = secs.floor();
    time_rfc3339(whole as i64, ((secs - whole) * 1e9) as i64)
}

fn network_mode(t: &TaskEntry) -> NetworkMode {
    t.assignment
        .task_definition
        .network_mode
        .unwrap_or(NetworkMode::Bridge)
}

/// The `Networks` of one container.
fn networks(t: &TaskEntry, c: &ContainerEntry, facts: &InstanceFacts, v: Version) -> Value {
    let mode = network_mode(t);
    let mut n = Map::new();
    n.insert("NetworkMode".into(), json!(mode.as_str()));
    match mode {
        NetworkMode::Awsvpc => {
            n.insert(
                "IPv4Addresses".into(),
                json!(t.network.ipv4.iter().collect::<Vec<_>>()),
            );
            if v == Version::V4 {
                n.insert("AttachmentIndex".into(), json!(0));
                if let Some(mac) = &t.network.mac {
                    n.insert("MACAddress".into(), json!(mac));
                }
                if let Some((cidr, gw)) = subnet_of(t) {
                    n.insert("IPv4SubnetCIDRBlock".into(), json!(cidr));
                    n.insert("SubnetGatewayIpv4Address".into(), json!(gw));
                }
                if let Some(ip) = &t.network.ipv4 {
                    n.insert(
                        "PrivateDNSName".into(),
                        json!(format!("ip-{}", ip.replace('.', "-"))),
                    );
                }
            }
        }
        NetworkMode::Host => {
            n.insert(
                "IPv4Addresses".into(),
                json!(facts.host_ip.iter().collect::<Vec<_>>()),
            );
        }
        NetworkMode::None => {}
        _ => {
            n.insert("IPv4Addresses".into(), json!(c.ips));
        }
    }
    json!([Value::Object(n)])
}

/// The subnet's CIDR and gateway (`10.213.0.1/24`) from the task's interface attachment.
fn subnet_of(t: &TaskEntry) -> Option<(String, String)> {
    let att = t
        .assignment
        .task
        .attachments
        .iter()
        .flatten()
        .find(|a| a.r#type.as_deref() == Some("ElasticNetworkInterface"))?;
    let gw = att
        .details
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some("subnetGatewayIpv4Address"))?
        .value
        .clone()?;
    let (addr, bits) = gw.split_once('/')?;
    let prefix = addr.rsplit_once('.')?.0;
    Some((format!("{prefix}.0/{bits}"), gw))
}

/// One container's metadata (`${ECS_CONTAINER_METADATA_URI_V4}`).
pub fn container(
    t: &TaskEntry,
    c: &ContainerEntry,
    observed: Option<&Observed>,
    facts: &InstanceFacts,
    v: Version,
) -> Value {
    let a = &t.assignment;
    let def = a
        .task_definition
        .container_definitions
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some(c.name.as_str()));
    let wire = a
        .task
        .containers
        .iter()
        .flatten()
        .find(|w| w.name.as_deref() == Some(c.name.as_str()));
    let mut m = Map::new();
    m.insert("DockerId".into(), json!(c.id.clone().unwrap_or_default()));
    m.insert("Name".into(), json!(c.name));
    m.insert("DockerName".into(), json!(c.docker_name));
    m.insert(
        "Image".into(),
        json!(def.and_then(|d| d.image.clone()).unwrap_or_default()),
    );
    let image_id = observed
        .and_then(|o| o.image_id.clone())
        .or_else(|| c.image_digest.clone());
    m.insert("ImageID".into(), json!(image_id.unwrap_or_default()));
    if !c.bindings.is_empty() {
        let ports: Vec<Value> = c
            .bindings
            .iter()
            .map(|b| {
                json!({"ContainerPort": b.container_port, "Protocol": b.protocol.as_str(),
                       "HostPort": b.host_port, "HostIp": b.host_ip})
            })
            .collect();
        m.insert("Ports".into(), json!(ports));
    }
    // ECS's labels and the task's own; gantry's bookkeeping labels stay out.
    let labels: HashMap<&String, &String> = observed
        .map(|o| {
            o.labels
                .iter()
                .filter(|(k, _)| !k.starts_with("gantry."))
                .collect()
        })
        .unwrap_or_default();
    m.insert("Labels".into(), json!(labels));
    m.insert(
        "DesiredStatus".into(),
        json!(a.task.desired_status.clone().unwrap_or_default()),
    );
    m.insert("KnownStatus".into(), json!(c.last_status));
    if let Some(code) = c.exit_code {
        m.insert("ExitCode".into(), json!(code));
    }
    let cpu = def.and_then(|d| d.cpu).unwrap_or(0);
    let mut limits = Map::new();
    limits.insert("CPU".into(), json!(cpu));
    if let Some(mem) = def.and_then(|d| d.memory.or(d.memory_reservation)) {
        limits.insert("Memory".into(), json!(mem));
    }
    m.insert("Limits".into(), Value::Object(limits));
    if let Some(o) = observed {
        for (k, t) in [
            ("CreatedAt", &o.created_at),
            ("StartedAt", &o.started_at),
            ("FinishedAt", &o.finished_at),
        ] {
            if let Some(t) = t {
                m.insert(k.into(), json!(t));
            }
        }
    }
    m.insert("Type".into(), json!("NORMAL"));
    if let Some(h) = &c.health {
        m.insert("Health".into(), json!({"status": h.as_str()}));
    }
    if v == Version::V4 {
        if let Some(log) = def.and_then(|d| d.log_configuration.as_ref()) {
            m.insert("LogDriver".into(), json!(log.log_driver.as_str()));
            // The options as written; secretOptions' values never appear here.
            m.insert(
                "LogOptions".into(),
                json!(log.options.clone().unwrap_or_default()),
            );
        }
        if let Some(arn) = wire.and_then(|w| w.container_arn.clone()) {
            m.insert("ContainerARN".into(), json!(arn));
        }
    }
    m.insert("Networks".into(), networks(t, c, facts, v));
    Value::Object(m)
}

/// The task's metadata (`${ECS_CONTAINER_METADATA_URI_V4}/task`), with its containers;
/// `with_tags` adds `TaskTags` and `ContainerInstanceTags` (`/taskWithTags`).
pub fn task(
    t: &TaskEntry,
    observed: &HashMap<String, Observed>,
    facts: &InstanceFacts,
    v: Version,
    with_tags: bool,
) -> Value {
    let a = &t.assignment;
    let td = &a.task_definition;
    let mut m = Map::new();
    m.insert(
        "Cluster".into(),
        json!(a.task.cluster_arn.clone().unwrap_or_default()),
    );
    m.insert("TaskARN".into(), json!(t.task_arn));
    m.insert(
        "Family".into(),
        json!(td.family.clone().unwrap_or_default()),
    );
    m.insert(
        "Revision".into(),
        json!(td.revision.unwrap_or(0).to_string()),
    );
    if let Some(service) = a
        .task
        .group
        .as_deref()
        .and_then(|g| g.strip_prefix("service:"))
    {
        m.insert("ServiceName".into(), json!(service));
    }
    m.insert(
        "DesiredStatus".into(),
        json!(a.task.desired_status.clone().unwrap_or_default()),
    );
    m.insert("KnownStatus".into(), json!(t.last_status));
    let mut limits = Map::new();
    if let Some(cpu) = td.cpu.as_deref().and_then(|c| c.parse::<f64>().ok()) {
        limits.insert("CPU".into(), json!(cpu / 1024.0));
    }
    if let Some(mem) = td.memory.as_deref().and_then(|c| c.parse::<i64>().ok()) {
        limits.insert("Memory".into(), json!(mem));
    }
    if !limits.is_empty() {
        m.insert("Limits".into(), Value::Object(limits));
    }
    for (k, at) in [
        ("PullStartedAt", a.task.pull_started_at),
        ("PullStoppedAt", a.task.pull_stopped_at),
        ("ExecutionStoppedAt", a.task.execution_stopped_at),
    ] {
        if let Some(at) = at {
            m.insert(k.into(), json!(rfc3339_of_secs(at)));
        }
    }
    m.insert(
        "AvailabilityZone".into(),
        json!(a
            .task
            .availability_zone
            .clone()
            .unwrap_or_else(|| facts.availability_zone.clone())),
    );
    let launch = a.task.launch_type.unwrap_or(LaunchType::Ec2);
    m.insert("LaunchType".into(), json!(launch.as_str()));
    let containers: Vec<Value> = t
        .containers
        .iter()
        .map(|c| {
            let o = c.id.as_ref().and_then(|id| observed.get(id));
            container(t, c, o, facts, v)
        })
        .collect();
    m.insert("Containers".into(), json!(containers));
    if with_tags {
        let tags = |tags: &[Tag]| -> Map<String, Value> {
            tags.iter()
                .map(|t| {
                    (
                        t.key.clone().unwrap_or_default(),
                        json!(t.value.clone().unwrap_or_default()),
                    )
                })
                .collect()
        };
        m.insert(
            "TaskTags".into(),
            Value::Object(tags(a.task.tags.as_deref().unwrap_or_default())),
        );
        m.insert(
            "ContainerInstanceTags".into(),
            Value::Object(tags(&facts.tags)),
        );
    }
    Value::Object(m)
}
