//! Service discovery for services with `serviceRegistries`, level-triggered as ECS does it:
//! each round, every task that serves (RUNNING, meant to run, not draining, not unhealthy) is
//! registered in the service's Cloud Map service under its task id, and every instance the
//! service registered whose task no longer serves is deregistered.
//!
//! [`plan`] is pure; [`round`] reads the state, asks the registry what it holds, and applies
//! the plan.

use crate::state::{ServiceRecord, TaskRecord, TaskState};
use crate::Server;
use gantry_api::model::{HealthStatus, ServiceRegistry};
use std::collections::BTreeMap;

pub const ECS_CLUSTER: &str = "ECS_CLUSTER_NAME";
pub const ECS_SERVICE: &str = "ECS_SERVICE_NAME";

/// What one round does in one registry.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Instance ids and the attributes to register them with.
    pub register: Vec<(String, BTreeMap<String, String>)>,
    pub deregister: Vec<String>,
}

/// Whether the task should be found by name now.
fn serves(t: &TaskRecord) -> bool {
    t.state() == TaskState::Running
        && t.desired_status() != "STOPPED"
        && t.draining.is_none()
        && t.task.health_status != Some(HealthStatus::Unhealthy)
}

/// The attributes ECS registers a task with: its address (the task's own under awsvpc, the
/// host's otherwise), the port the registry's SRV record needs, and where it runs.
pub fn attributes(
    rec: &ServiceRecord,
    reg: &ServiceRegistry,
    t: &TaskRecord,
    region: &str,
    host_address: Option<&str>,
) -> Option<BTreeMap<String, String>> {
    let eni_ip = crate::ops::network::task_ip(&t.task);
    let port = match (&reg.container_name, reg.container_port, &eni_ip) {
        (Some(name), Some(port), None) => Some(
            t.task
                .containers
                .iter()
                .flatten()
                .find(|c| c.name.as_deref() == Some(name))?
                .network_bindings
                .iter()
                .flatten()
                .find(|b| b.container_port == Some(port))?
                .host_port?,
        ),
        (Some(_), Some(port), Some(_)) => Some(port),
        _ => reg.port,
    };
    let ip = match eni_ip {
        Some(ip) => ip,
        None => host_address?.to_string(),
    };
    let family = t
        .task
        .task_definition_arn
        .as_deref()
        .and_then(|a| a.rsplit_once("task-definition/"))
        .and_then(|(_, fr)| fr.rsplit_once(':'))
        .map(|(f, _)| f.to_string())
        .unwrap_or_default();
    let mut a = BTreeMap::from([
        ("AWS_INSTANCE_IPV4".to_string(), ip),
        ("REGION".to_string(), region.to_string()),
        (ECS_CLUSTER.to_string(), rec.cluster.clone()),
        (ECS_SERVICE.to_string(), rec.name.clone()),
        ("ECS_TASK_DEFINITION_FAMILY".to_string(), family),
    ]);
    if let Some(p) = port {
        a.insert("AWS_INSTANCE_PORT".into(), p.to_string());
    }
    if let Some(z) = &t.task.availability_zone {
        a.insert("AVAILABILITY_ZONE".into(), z.clone());
    }
    Some(a)
}

/// What to change in `reg` given the service's tasks and what the registry holds now.
pub fn plan<'t>(
    rec: &ServiceRecord,
    reg: &ServiceRegistry,
    tasks: impl Iterator<Item = &'t TaskRecord>,
    registered: &[(String, BTreeMap<String, String>)],
    region: &str,
    host_address: Option<&str>,
) -> Plan {
    let mut wanted = BTreeMap::new();
    for t in tasks.filter(|t| serves(t)) {
        if let Some(a) = attributes(rec, reg, t, region, host_address) {
            wanted.insert(t.id.clone(), a);
        }
    }
    let mut plan = Plan::default();
    for (id, attrs) in &wanted {
        if !registered.iter().any(|(i, a)| i == id && a == attrs) {
            plan.register.push((id.clone(), attrs.clone()));
        }
    }
    for (id, attrs) in registered {
        let ours = attrs.get(ECS_CLUSTER) == Some(&rec.cluster)
            && attrs.get(ECS_SERVICE) == Some(&rec.name);
        if ours && !wanted.contains_key(id) {
            plan.deregister.push(id.clone());
        }
    }
    plan
}

/// One round for one service: registers and deregisters its tasks. Failures are logged and
/// retried by the next round.
pub async fn round(server: &Server, key: &(String, String)) {
    let Some(registry) = &server.config.registries else {
        return;
    };
    let region = server.config.region.clone();
    let host = server.config.registry_host_address.clone();
    let plans = server.read(|st| {
        let Some(rec) = st.services.get(key) else {
            return Vec::new();
        };
        // The service's registries, and those UpdateService took off it: its tasks in those
        // leave as they stop, and none joins them.
        let current = rec
            .service
            .service_registries
            .iter()
            .flatten()
            .map(|r| (r, true));
        let former = rec.former_registries.iter().map(|r| (r, false));
        current
            .chain(former)
            .filter_map(|(reg, joins)| {
                let arn = reg.registry_arn.clone()?;
                let held = registry.instances(&arn);
                let mut p = plan(
                    rec,
                    reg,
                    st.service_tasks(&rec.cluster, &rec.name),
                    &held,
                    &region,
                    host.as_deref(),
                );
                if !joins {
                    p.register.clear();
                }
                Some((arn, p))
            })
            .collect::<Vec<_>>()
    });
    let Ok(plans) = plans else {
        return;
    };
    for (arn, p) in plans {
        for (id, attrs) in p.register {
            match registry.register(&arn, &id, attrs).await {
                Ok(()) => {
                    tracing::info!(service = %key.1, registry = %arn, task = %id, "registered the task for service discovery")
                }
                Err(e) => {
                    tracing::warn!(registry = %arn, task = %id, error = %e.message, "registering a task for service discovery failed; the next round tries again")
                }
            }
        }
        for id in p.deregister {
            match registry.deregister(&arn, &id).await {
                Ok(()) => {
                    tracing::info!(service = %key.1, registry = %arn, task = %id, "deregistered the task from service discovery")
                }
                Err(e) => {
                    tracing::warn!(registry = %arn, task = %id, error = %e.message, "deregistering a task from service discovery failed; the next round tries again")
                }
            }
        }
    }
}
