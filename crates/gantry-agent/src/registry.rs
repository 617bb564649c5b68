//! One registry of the tasks this agent runs: what the control plane asked for and what the
//! agent observes, readable by the rest of the binary.
//!
//! Every task worker writes its task's entry as it pulls, creates, starts, observes and stops
//! containers (an adopted task too, from the moment its worker takes it over), and removes it
//! when the worker ends after cleanup. Readers get snapshots (clones): by task ARN, by an address
//! of the task (to find the task calling a local endpoint from its source IP) or by a container
//! id (to find what a container belongs to, e.g. to follow its logs).
//!
//! The lock is a plain synchronous one, held only to copy an entry in or out, never across an
//! `.await`.

use crate::runtime::{Binding, Protocol};
use gantry_api::agent::AssignedTask;
use gantry_api::model::{HealthStatus, TaskStopCode};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// What the agent knows about one container of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerEntry {
    /// The container's name in the task definition.
    pub name: String,
    /// The runtime's container id, once the container exists.
    pub id: Option<String>,
    /// The container's Docker name.
    pub docker_name: String,
    /// `PENDING`, `RUNNING` or `STOPPED`, as reported to the control plane.
    pub last_status: String,
    /// Set once the container has run and exited.
    pub exit_code: Option<i64>,
    /// For a container with a health check: its health.
    pub health: Option<HealthStatus>,
    /// Why the container failed or stopped, when the agent knows.
    pub reason: Option<String>,
    /// The image the container runs, as the runtime identifies it.
    pub image_digest: Option<String>,
    /// The container's own addresses on its networks (bridge mode), while it runs.
    pub ips: Vec<String>,
    /// Host ports bound to the container's ports (bridge: as Docker bound them; host mode:
    /// the port mappings themselves).
    pub bindings: Vec<Binding>,
}

/// Where an awsvpc task is on the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskNetwork {
    /// The task's address on its subnet.
    pub ipv4: Option<String>,
    /// The interface's MAC address.
    pub mac: Option<String>,
    /// The Docker network of the task's subnet.
    pub network: Option<String>,
    /// The id of the container that holds the task's network namespace.
    pub pause_container: Option<String>,
}

/// A host port the task holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// The port number on the host.
    pub port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// A snapshot of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEntry {
    /// The task's ARN.
    pub task_arn: String,
    /// The assignment the control plane sent last: the desired task and its definition.
    pub assignment: Arc<AssignedTask>,
    /// `PENDING`, `RUNNING`, `STOPPING` or `STOPPED`, as reported to the control plane.
    pub last_status: String,
    /// The task's health (from its essential containers' health checks).
    pub health: HealthStatus,
    /// Why the task stopped or is stopping.
    pub stop: Option<(TaskStopCode, String)>,
    /// When the task's containers had all started (seconds since the epoch).
    pub started_at: Option<f64>,
    /// The task's containers, in task definition order.
    pub containers: Vec<ContainerEntry>,
    /// An awsvpc task's interface and network namespace.
    pub network: TaskNetwork,
    /// The host ports the task's containers hold, sorted, without duplicates.
    pub host_ports: Vec<HostPort>,
}

impl TaskEntry {
    /// The container named `name` in the task definition.
    pub fn container(&self, name: &str) -> Option<&ContainerEntry> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The runtime ids of the containers that exist, by container name.
    pub fn container_ids(&self) -> HashMap<String, String> {
        self.containers
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.id.clone()?)))
            .collect()
    }

    /// The container whose runtime id is `id` (not the pause container).
    pub fn container_by_id(&self, id: &str) -> Option<&ContainerEntry> {
        self.containers
            .iter()
            .find(|c| c.id.as_deref().is_some_and(|i| id_matches(i, id)))
    }

    /// The host ports of `bindings`, sorted, without duplicates.
    pub fn host_ports_of<'a>(bindings: impl IntoIterator<Item = &'a Binding>) -> Vec<HostPort> {
        let mut ports: Vec<HostPort> = bindings
            .into_iter()
            .filter(|b| b.host_port != 0)
            .map(|b| HostPort {
                port: b.host_port,
                protocol: b.protocol,
            })
            .collect();
        ports.sort();
        ports.dedup();
        ports
    }

    /// Addresses by which a caller is this task: the awsvpc address while the task has not
    /// stopped, and its containers' own addresses while they run.
    fn addresses(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.last_status != "STOPPED" {
            out.extend(self.network.ipv4.iter().cloned());
        }
        for c in &self.containers {
            if c.last_status == "RUNNING" {
                out.extend(c.ips.iter().filter(|ip| !ip.is_empty()).cloned());
            }
        }
        out
    }

    /// The runtime ids of everything the task created, its pause container included.
    fn runtime_ids(&self) -> Vec<String> {
        self.containers
            .iter()
            .filter_map(|c| c.id.clone())
            .chain(self.network.pause_container.iter().cloned())
            .collect()
    }
}

/// Whether the runtime id `full` is `given`: the same, or `given` is a prefix of it of at least
/// 12 characters (Docker's short ids).
fn id_matches(full: &str, given: &str) -> bool {
    full == given || (given.len() >= 12 && full.starts_with(given))
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<String, TaskEntry>,
    /// Address → the tasks claiming it (see [`TaskEntry::addresses`]), oldest claim first.
    by_ip: HashMap<String, Vec<String>>,
    /// Runtime container id → task ARN.
    by_id: HashMap<String, String>,
}

impl Inner {
    /// Moves the indexes from `old` (the task's previous entry, if any) to `new` (`None`: the
    /// task is gone).
    fn reindex(&mut self, arn: &str, old: Option<&TaskEntry>, new: Option<&TaskEntry>) {
        let (old_ips, new_ips) = (
            old.map(TaskEntry::addresses).unwrap_or_default(),
            new.map(TaskEntry::addresses).unwrap_or_default(),
        );
        for ip in old_ips.iter().filter(|ip| !new_ips.contains(ip)) {
            if let Some(claims) = self.by_ip.get_mut(ip) {
                claims.retain(|a| a != arn);
                if claims.is_empty() {
                    self.by_ip.remove(ip);
                }
            }
        }
        for ip in new_ips.into_iter().filter(|ip| !old_ips.contains(ip)) {
            let claims = self.by_ip.entry(ip).or_default();
            if !claims.iter().any(|a| a == arn) {
                claims.push(arn.to_string());
            }
        }
        let new_ids = new.map(TaskEntry::runtime_ids).unwrap_or_default();
        for id in old.map(TaskEntry::runtime_ids).unwrap_or_default() {
            if !new_ids.contains(&id) && self.by_id.get(&id).map(String::as_str) == Some(arn) {
                self.by_id.remove(&id);
            }
        }
        for id in new_ids {
            self.by_id.insert(id, arn.to_string());
        }
    }
}

/// The agent's tasks, shared by the workers that write them and whatever reads them. Clones
/// share one registry.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    inner: Arc<RwLock<Inner>>,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRegistry")
            .field("tasks", &self.len())
            .finish()
    }
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    // A panic never happens while the lock is held (only moves and map updates), so a poisoned
    // lock still holds consistent data.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The task `task_arn`.
    pub fn get(&self, task_arn: &str) -> Option<TaskEntry> {
        self.read().tasks.get(task_arn).cloned()
    }

    /// The task that has the address `ip`: an awsvpc task by its interface's address (until it
    /// has stopped), a bridge task by a running container's address.
    pub fn by_ip(&self, ip: &str) -> Option<TaskEntry> {
        let g = self.read();
        // The latest claim wins: an address goes back to the pool when its task stops, and a
        // new task may get it while the old entry still waits for cleanup.
        g.by_ip
            .get(ip)
            .and_then(|claims| claims.last())
            .and_then(|arn| g.tasks.get(arn))
            .cloned()
    }

    /// The task that owns the container `id` (a full runtime id, or a prefix of at least 12
    /// characters), with the container's name (`None` for the pause container).
    pub fn by_container_id(&self, id: &str) -> Option<(TaskEntry, Option<String>)> {
        let g = self.read();
        let arn = match g.by_id.get(id) {
            Some(arn) => arn,
            None if id.len() >= 12 => {
                let mut found = g.by_id.iter().filter(|(full, _)| id_matches(full, id));
                match (found.next(), found.next()) {
                    (Some((_, arn)), None) => arn,
                    _ => return None,
                }
            }
            None => return None,
        };
        let e = g.tasks.get(arn)?.clone();
        let name = e.container_by_id(id).map(|c| c.name.clone());
        Some((e, name))
    }

    /// Every task, in no particular order.
    pub fn list(&self) -> Vec<TaskEntry> {
        self.read().tasks.values().cloned().collect()
    }

    /// How many tasks the registry holds.
    pub fn len(&self) -> usize {
        self.read().tasks.len()
    }

    /// Whether the registry holds no task.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `entry` as its task's state, replacing what was there.
    pub(crate) fn upsert(&self, entry: TaskEntry) {
        let mut g = self.write();
        let arn = entry.task_arn.clone();
        let old = g.tasks.remove(&arn);
        g.reindex(&arn, old.as_ref(), Some(&entry));
        g.tasks.insert(arn, entry);
    }

    /// Forgets the task `task_arn`.
    pub(crate) fn remove(&self, task_arn: &str) {
        let mut g = self.write();
        if let Some(old) = g.tasks.remove(task_arn) {
            g.reindex(task_arn, Some(&old), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::model::{Task, TaskDefinition};

    fn assignment(arn: &str) -> Arc<AssignedTask> {
        Arc::new(AssignedTask {
            task: Task {
                task_arn: Some(arn.into()),
                ..Task::default()
            },
            task_definition: TaskDefinition::default(),
            firewall: None,
            secrets: Default::default(),
            secrets_error: None,
            credentials: None,
        })
    }

    fn container(name: &str, id: &str, status: &str, ip: &str, port: u16) -> ContainerEntry {
        ContainerEntry {
            name: name.into(),
            id: Some(id.into()),
            docker_name: format!("gantry-{name}"),
            last_status: status.into(),
            exit_code: None,
            health: None,
            reason: None,
            image_digest: None,
            ips: vec![ip.into()],
            bindings: vec![Binding {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: "0.0.0.0".into(),
                host_port: port,
            }],
        }
    }

    fn entry(arn: &str, status: &str, containers: Vec<ContainerEntry>) -> TaskEntry {
        let host_ports = TaskEntry::host_ports_of(containers.iter().flat_map(|c| &c.bindings));
        TaskEntry {
            task_arn: arn.into(),
            assignment: assignment(arn),
            last_status: status.into(),
            health: HealthStatus::Unknown,
            stop: None,
            started_at: None,
            containers,
            network: TaskNetwork::default(),
            host_ports,
        }
    }

    const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const ID_B: &str = "aaaaaaaaaaaabbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn finds_tasks_by_arn_address_and_container() {
        let r = TaskRegistry::new();
        assert!(r.is_empty());
        r.upsert(entry(
            "t1",
            "RUNNING",
            vec![
                container("web", ID_A, "RUNNING", "172.17.0.2", 32768),
                container("side", ID_B, "RUNNING", "172.17.0.3", 32768),
            ],
        ));
        let e = r.get("t1").unwrap();
        assert_eq!(e.container_ids().len(), 2);
        assert_eq!(e.container_ids()["web"], ID_A);
        assert_eq!(
            e.host_ports,
            vec![HostPort {
                port: 32768,
                protocol: Protocol::Tcp
            }]
        );
        assert_eq!(r.by_ip("172.17.0.3").unwrap().task_arn, "t1");
        assert!(r.by_ip("172.17.0.9").is_none());
        let (t, name) = r.by_container_id(ID_A).unwrap();
        assert_eq!((t.task_arn.as_str(), name.as_deref()), ("t1", Some("web")));
        // A short id that is a prefix of both is ambiguous; one that is unique is found.
        assert!(r.by_container_id(&ID_A[..12]).is_none());
        assert_eq!(
            r.by_container_id(&ID_B[..16]).unwrap().1.as_deref(),
            Some("side")
        );
        // Too short a prefix never matches.
        assert!(r.by_container_id("aaaa").is_none());
        assert_eq!(r.list().len(), 1);
    }

    #[test]
    fn updates_move_the_indexes_and_removal_clears_them() {
        let r = TaskRegistry::new();
        r.upsert(entry(
            "t1",
            "RUNNING",
            vec![container("web", ID_A, "RUNNING", "172.17.0.2", 1)],
        ));
        // The container stopped: its address is no longer the task's.
        r.upsert(entry(
            "t1",
            "STOPPED",
            vec![container("web", ID_A, "STOPPED", "172.17.0.2", 1)],
        ));
        assert!(r.by_ip("172.17.0.2").is_none());
        assert!(r.by_container_id(ID_A).is_some());
        r.remove("t1");
        assert!(r.get("t1").is_none() && r.by_container_id(ID_A).is_none() && r.is_empty());
    }

    #[test]
    fn a_reused_address_belongs_to_the_live_task() {
        let r = TaskRegistry::new();
        let mut old = entry("old", "RUNNING", vec![]);
        old.network.ipv4 = Some("10.213.0.5".into());
        old.network.pause_container = Some("pause-old".into());
        r.upsert(old.clone());
        assert_eq!(r.by_ip("10.213.0.5").unwrap().task_arn, "old");
        assert_eq!(r.by_container_id("pause-old").unwrap().1, None);
        // The old task stops (its entry stays until cleanup); a new one gets the address.
        old.last_status = "STOPPED".into();
        r.upsert(old);
        let mut new = entry("new", "PENDING", vec![]);
        new.network.ipv4 = Some("10.213.0.5".into());
        r.upsert(new);
        assert_eq!(r.by_ip("10.213.0.5").unwrap().task_arn, "new");
        // Cleanup of the old task leaves the new task's address alone.
        r.remove("old");
        assert_eq!(r.by_ip("10.213.0.5").unwrap().task_arn, "new");
    }

    #[test]
    fn the_newest_claim_to_an_address_wins_until_it_goes() {
        let r = TaskRegistry::new();
        let mut a = entry("a", "RUNNING", vec![]);
        a.network.ipv4 = Some("10.213.0.7".into());
        r.upsert(a.clone());
        let mut b = entry("b", "RUNNING", vec![]);
        b.network.ipv4 = Some("10.213.0.7".into());
        r.upsert(b);
        // Updates of the older claim do not take the address back from the newer one...
        a.last_status = "STOPPING".into();
        r.upsert(a.clone());
        assert_eq!(r.by_ip("10.213.0.7").unwrap().task_arn, "b");
        // ...and when the newer task goes, the older claim shows again, until it stops too.
        r.remove("b");
        assert_eq!(r.by_ip("10.213.0.7").unwrap().task_arn, "a");
        a.last_status = "STOPPED".into();
        r.upsert(a);
        assert!(r.by_ip("10.213.0.7").is_none());
    }

    #[test]
    fn clones_share_one_registry() {
        let r = TaskRegistry::new();
        let reader = r.clone();
        r.upsert(entry("t", "PENDING", vec![]));
        assert_eq!(reader.len(), 1);
        let snapshot = reader.get("t").unwrap();
        r.remove("t");
        // A snapshot is a copy.
        assert_eq!(snapshot.task_arn, "t");
    }
}
