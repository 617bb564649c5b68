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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::TaskNetwork;
    use crate::runtime::{Binding, Protocol};
    use gantry_api::agent::AssignedTask;
    use gantry_api::model::{
        Attachment, ContainerDefinition, KeyValuePair, LogConfiguration, LogDriver, Task,
        TaskDefinition,
    };
    use std::sync::Arc;

    const ARN: &str = "arn:aws:ecs:us-east-1:1:task/default/abc";

    fn entry(mode: NetworkMode) -> TaskEntry {
        let def = ContainerDefinition {
            name: Some("web".into()),
            image: Some("busybox".into()),
            memory: Some(64),
            cpu: Some(128),
            log_configuration: Some(LogConfiguration {
                log_driver: LogDriver::JsonFile,
                options: Some([("max-size".to_string(), "1m".to_string())].into()),
                secret_options: None,
            }),
            ..ContainerDefinition::default()
        };
        let eni = Attachment {
            r#type: Some("ElasticNetworkInterface".into()),
            details: Some(
                [
                    ("subnetGatewayIpv4Address", "10.213.0.1/24"),
                    ("privateIPv4Address", "10.213.0.5"),
                ]
                .iter()
                .map(|(k, v)| KeyValuePair {
                    name: Some(k.to_string()),
                    value: Some(v.to_string()),
                })
                .collect(),
            ),
            ..Attachment::default()
        };
        TaskEntry {
            task_arn: ARN.into(),
            assignment: Arc::new(AssignedTask {
                task: Task {
                    task_arn: Some(ARN.into()),
                    cluster_arn: Some("arn:aws:ecs:us-east-1:1:cluster/default".into()),
                    desired_status: Some("RUNNING".into()),
                    group: Some("service:web".into()),
                    pull_started_at: Some(1_700_000_000.5),
                    attachments: (mode == NetworkMode::Awsvpc).then(|| vec![eni]),
                    tags: Some(vec![Tag {
                        key: Some("team".into()),
                        value: Some("blue".into()),
                    }]),
                    ..Task::default()
                },
                task_definition: TaskDefinition {
                    family: Some("web".into()),
                    revision: Some(3),
                    network_mode: Some(mode),
                    container_definitions: Some(vec![def]),
                    ..TaskDefinition::default()
                },
                firewall: None,
                secrets: Default::default(),
                secrets_error: None,
                credentials: None,
            }),
            last_status: "RUNNING".into(),
            health: gantry_api::model::HealthStatus::Unknown,
            stop: None,
            started_at: None,
            containers: vec![ContainerEntry {
                name: "web".into(),
                id: Some("d0c".into()),
                docker_name: "gantry-web-3-web-abc".into(),
                last_status: "RUNNING".into(),
                exit_code: None,
                health: None,
                reason: None,
                image_digest: Some("sha256:1".into()),
                ips: vec!["172.17.0.9".into()],
                bindings: vec![Binding {
                    container_port: 80,
                    protocol: Protocol::Tcp,
                    host_ip: "0.0.0.0".into(),
                    host_port: 32768,
                }],
            }],
            network: TaskNetwork {
                ipv4: (mode == NetworkMode::Awsvpc).then(|| "10.213.0.5".to_string()),
                mac: (mode == NetworkMode::Awsvpc).then(|| "0a:58:0a:d5:00:05".to_string()),
                ..TaskNetwork::default()
            },
            host_ports: Vec::new(),
        }
    }

    fn facts() -> InstanceFacts {
        InstanceFacts {
            availability_zone: "local-1a".into(),
            host_ip: Some("192.168.1.10".into()),
            tags: vec![Tag {
                key: Some("rack".into()),
                value: Some("r7".into()),
            }],
        }
    }

    #[test]
    fn the_task_and_its_containers_in_ecs_field_names() {
        let t = entry(NetworkMode::Bridge);
        let v = task(&t, &HashMap::new(), &facts(), Version::V4, false);
        assert_eq!(v["TaskARN"], ARN);
        assert_eq!(v["Family"], "web");
        assert_eq!(v["Revision"], "3");
        assert_eq!(v["ServiceName"], "web");
        assert_eq!(v["LaunchType"], "EC2");
        assert_eq!(v["AvailabilityZone"], "local-1a");
        assert_eq!(v["PullStartedAt"], "2023-11-14T22:13:20.500000000Z");
        assert!(v.get("TaskTags").is_none());
        let c = &v["Containers"][0];
        assert_eq!(c["DockerId"], "d0c");
        assert_eq!(c["ImageID"], "sha256:1");
        assert_eq!(c["Limits"], json!({"CPU": 128, "Memory": 64}));
        assert_eq!(c["LogOptions"], json!({"max-size": "1m"}));
        assert_eq!(
            c["Networks"],
            json!([{"NetworkMode": "bridge", "IPv4Addresses": ["172.17.0.9"]}])
        );
        assert_eq!(c["Ports"][0]["HostPort"], 32768);
        let v3 = container(&t, &t.containers[0], None, &facts(), Version::V3);
        assert!(v3.get("LogDriver").is_none() && v3.get("ContainerARN").is_none());
    }

    #[test]
    fn addresses_follow_the_network_mode() {
        let t = entry(NetworkMode::Awsvpc);
        let n = &container(&t, &t.containers[0], None, &facts(), Version::V4)["Networks"][0];
        assert_eq!(n["IPv4Addresses"], json!(["10.213.0.5"]));
        assert_eq!(n["IPv4SubnetCIDRBlock"], "10.213.0.0/24");
        assert_eq!(n["SubnetGatewayIpv4Address"], "10.213.0.1/24");
        assert_eq!(n["PrivateDNSName"], "ip-10-213-0-5");
        let t = entry(NetworkMode::Host);
        let n = &container(&t, &t.containers[0], None, &facts(), Version::V4)["Networks"][0];
        assert_eq!(
            n,
            &json!({"NetworkMode": "host", "IPv4Addresses": ["192.168.1.10"]})
        );
    }

    #[test]
    fn tags_of_the_task_and_the_instance() {
        let t = entry(NetworkMode::Bridge);
        let v = task(&t, &HashMap::new(), &facts(), Version::V4, true);
        assert_eq!(v["TaskTags"], json!({"team": "blue"}));
        assert_eq!(v["ContainerInstanceTags"], json!({"rack": "r7"}));
    }
}
