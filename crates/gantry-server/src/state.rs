//! The control plane's in-memory state: every record, indexed for reads, and how each record
//! maps to a key in the durable store.
//!
//! Writers change the state and queue the matching store transaction while holding the state's
//! write lock (so store order equals memory order), then wait for durability before answering.

pub use gantry_api::agent::TaskState;
use gantry_api::model::{
    Cluster, ContainerInstance, LoadBalancer, Service, ServiceRegistry, SettingName, Tag, Task,
    TaskDefinition, TaskDefinitionStatus,
};
use gantry_scheduler::Proto;
use gantry_store::{Store, Txn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A task definition revision with its tags (ECS keeps tags beside the definition).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDefRecord {
    pub task_definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TaskDefRecord {
    pub fn status(&self) -> TaskDefinitionStatus {
        self.task_definition
            .status
            .unwrap_or(TaskDefinitionStatus::Active)
    }
}

/// A family: its revisions and the highest revision ever issued (never reused, even after
/// every revision was deleted).
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub last_revision: i32,
    pub revisions: BTreeMap<i32, TaskDefRecord>,
}

impl Family {
    pub fn has_active(&self) -> bool {
        self.revisions
            .values()
            .any(|r| r.status() == TaskDefinitionStatus::Active)
    }
}

/// An account setting as stored: per principal ARN, or the account default (`principal` empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingRecord {
    pub name: SettingName,
    pub value: String,
    pub principal: String,
}

/// A container instance: its ECS shape (registered resources, attributes, status) and, in memory
/// only, its agent's liveness and the revision of its desired task set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub cluster: String,
    pub id: String,
    pub instance: ContainerInstance,
    /// Registered by an agent (false: through the public RegisterContainerInstance call).
    #[serde(default)]
    pub has_agent: bool,
    /// Serves FARGATE tasks (of any cluster).
    #[serde(default)]
    pub fargate: bool,
    /// Serves only FARGATE tasks: not a container instance of its cluster.
    #[serde(default)]
    pub fargate_only: bool,
    /// The capacity provider the agent stands for (`--capacity-provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
    /// Address ranges other networks hold on the agent's Docker engine (CIDRs), which
    /// awsvpc subnets must not take.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_ranges: Vec<String>,
    /// When the agent was last heard from (seconds since the epoch).
    #[serde(skip)]
    pub last_seen: f64,
    /// Polls waiting right now.
    #[serde(skip)]
    pub open_polls: u32,
    /// Bumped whenever the instance's desired task set changes.
    #[serde(skip)]
    pub revision: u64,
}

impl InstanceRecord {
    pub fn status(&self) -> &str {
        self.instance.status.as_deref().unwrap_or("ACTIVE")
    }

    /// The integer value of a registered resource (CPU, MEMORY).
    pub fn registered(&self, name: &str) -> i64 {
        self.instance
            .registered_resources
            .iter()
            .flatten()
            .find(|r| r.name.as_deref() == Some(name))
            .and_then(|r| r.integer_value.map(i64::from).or(r.long_value))
            .unwrap_or(0)
    }

    /// GPUs registered (the GPU resource lists their ids).
    pub fn registered_gpus(&self) -> i64 {
        self.instance
            .registered_resources
            .iter()
            .flatten()
            .find(|r| r.name.as_deref() == Some("GPU"))
            .map(|r| {
                r.string_set_value
                    .as_ref()
                    .map_or(0, |v| v.len() as i64)
                    .max(r.integer_value.unwrap_or(0) as i64)
            })
            .unwrap_or(0)
    }

    /// Reserved host ports (PORTS, PORTS_UDP).
    pub fn reserved_ports(&self) -> Vec<(u16, Proto)> {
        let mut out = Vec::new();
        for r in self.instance.registered_resources.iter().flatten() {
            let proto = match r.name.as_deref() {
                Some("PORTS") => Proto::Tcp,
                Some("PORTS_UDP") => Proto::Udp,
                _ => continue,
            };
            for p in r.string_set_value.iter().flatten() {
                if let Ok(p) = p.parse::<u16>() {
                    out.push((p, proto));
                }
            }
        }
        out
    }
}

/// A task: its ECS shape, where it runs and what it reserves there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub cluster: String,
    pub id: String,
    /// The container instance id it was placed on.
    pub instance: String,
    pub task: Task,
    pub demand_cpu: i64,
    pub demand_memory: i64,
    #[serde(default)]
    pub demand_gpu: i64,
    #[serde(default)]
    pub demand_ports: Vec<(u16, Proto)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    /// An awsvpc task's security groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_groups: Vec<String>,
    /// The service and deployment id of a service's task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<(String, String)>,
    /// When the service scheduler first counted the task healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_at: Option<f64>,
    /// Whether the service scheduler has accounted for the task's stop.
    #[serde(default)]
    pub counted: bool,
    /// A service task leaving its load balancers: deregistered, it drains until this time,
    /// then stops for this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<(f64, String)>,
}

impl TaskRecord {
    pub fn last_status(&self) -> &str {
        self.task.last_status.as_deref().unwrap_or("PROVISIONING")
    }

    pub fn desired_status(&self) -> &str {
        self.task.desired_status.as_deref().unwrap_or("RUNNING")
    }

    /// Where the task is in its lifecycle (an unknown name counts as PROVISIONING).
    pub fn state(&self) -> TaskState {
        TaskState::parse(self.last_status()).unwrap_or(TaskState::Provisioning)
    }

    pub fn is_stopped(&self) -> bool {
        self.state() == TaskState::Stopped
    }

    pub fn is_pending(&self) -> bool {
        self.state() < TaskState::Running
    }
}

/// A service: its ECS shape (deployments and events included) and the scheduler's memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub cluster: String,
    pub name: String,
    pub service: Service,
    /// The task definition of the last deployment that completed (the rollback target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<String>,
    /// Tasks in a row that stopped before reaching RUNNING (the throttle).
    #[serde(default)]
    pub start_failures: u32,
    /// No new tasks before this time (seconds since the epoch).
    #[serde(default)]
    pub next_launch_at: f64,
    /// Whether "has reached a steady state" was reported for the current state.
    #[serde(default)]
    pub steady: bool,
    /// Load balancers and registries UpdateService took off the service: its older tasks
    /// leave them as they stop, and nothing new joins them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_load_balancers: Vec<LoadBalancer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub former_registries: Vec<ServiceRegistry>,
}

impl ServiceRecord {
    pub fn status(&self) -> &str {
        self.service.status.as_deref().unwrap_or("ACTIVE")
    }
}

/// An awsvpc subnet: a /24 of the pool (`--awsvpc-pool`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubnetRecord {
    pub id: String,
    /// The third byte of a subnet of 10.213.0.0/16 (records from before the pool was a setting).
    #[serde(default)]
    pub octet: u8,
    /// The /24's first address, as a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<u32>,
}

impl SubnetRecord {
    /// The /24's first address.
    pub fn base(&self) -> u32 {
        self.network
            .unwrap_or(u32::from_be_bytes([10, 213, self.octet, 0]))
    }

    pub fn address(&self, host: u8) -> String {
        std::net::Ipv4Addr::from(self.base() | u32::from(host)).to_string()
    }
}

/// The resources, ports and groups an instance's unstopped tasks hold.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub cpu: i64,
    pub memory: i64,
    pub gpu: i64,
    /// Host ports, with how many tasks hold each.
    pub ports: BTreeMap<(u16, Proto), u32>,
    pub groups: BTreeMap<String, u32>,
    pub running: u32,
    pub pending: u32,
}

#[derive(Debug, Default)]
pub struct State {
    /// Clusters by name, ACTIVE and INACTIVE (deleted clusters stay describable).
    pub clusters: BTreeMap<String, Cluster>,
    pub families: BTreeMap<String, Family>,
    /// Keyed by (principal ARN or "" for the account default, setting name).
    pub settings: BTreeMap<(String, SettingName), SettingRecord>,
    /// Capacity providers the user created, by name (FARGATE and FARGATE_SPOT are built in).
    pub capacity_providers: BTreeMap<String, gantry_api::model::CapacityProvider>,
    /// Security groups by id (gantry's own API).
    pub security_groups: BTreeMap<String, gantry_api::agent::SecurityGroup>,
    /// awsvpc subnets by id.
    pub subnets: BTreeMap<String, SubnetRecord>,
    /// Services by (cluster, name), ACTIVE, DRAINING and INACTIVE.
    pub services: BTreeMap<(String, String), ServiceRecord>,
    /// Container instances by id (ids are unique across clusters).
    pub instances: BTreeMap<String, InstanceRecord>,
    /// Tasks by id.
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Task ids by the service they belong to: (cluster, service name).
    pub tasks_by_service: BTreeMap<(String, String), std::collections::BTreeSet<String>>,
    /// Task ids by the instance they are on.
    pub tasks_by_instance: BTreeMap<String, std::collections::BTreeSet<String>>,
    /// RunTask idempotency: (cluster, clientToken) → task ids.
    pub client_tokens: BTreeMap<(String, String), Vec<String>>,
    /// Instances whose desired set changed in the current write (their polls are woken).
    pub bumped: Vec<String>,
    /// Bumped when instances come or go (placement caches rebuild).
    pub topology: u64,
    /// What each instance's unstopped tasks hold, kept current as tasks come, move and go.
    pub usage: std::collections::HashMap<String, Usage>,
    /// Where awsvpc subnets take their /24s from.
    pub awsvpc_pool: crate::ops::network::Pool,
    /// Instances whose tasks, attributes or status changed since placement last looked.
    dirty: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Every kind of record the ECS control plane stores, declared once: its key prefix and its
/// type. Keys live in the ECS namespace of the server's region (`ecs/<region>/...`, see
/// [`gantry_core::Scoped`]).
pub mod records {
    use super::*;
    use gantry_core::Kind;

    pub const CLUSTERS: Kind<Cluster> = Kind::new("clusters");
    pub const FAMILIES: Kind<FamilyMeta> = Kind::new("families");
    pub const TASK_DEFS: Kind<TaskDefRecord> = Kind::new("taskdefs");
    pub const SETTINGS: Kind<SettingRecord> = Kind::new("settings");
    pub const SERVICES: Kind<ServiceRecord> = Kind::new("services");
    pub const SUBNETS: Kind<SubnetRecord> = Kind::new("subnets");
    pub const SECURITY_GROUPS: Kind<gantry_api::agent::SecurityGroup> =
        Kind::new("security-groups");
    pub const CAPACITY_PROVIDERS: Kind<gantry_api::model::CapacityProvider> =
        Kind::new("capacity-providers");
    pub const INSTANCES: Kind<InstanceRecord> = Kind::new("instances");
    pub const TASKS: Kind<TaskRecord> = Kind::new("tasks");

    /// Every prefix above, for moving records written before namespaces existed.
    pub const PREFIXES: &[&str] = &[
        "clusters",
        "families",
        "taskdefs",
        "settings",
        "services",
        "subnets",
        "security-groups",
        "capacity-providers",
        "instances",
        "tasks",
    ];

    /// A revision's id: zero-padded, so revisions load in order.
    pub fn task_def_id(family: &str, revision: i32) -> String {
        format!("{family}/{revision:010}")
    }
    pub fn setting_id(principal: &str, name: &str) -> String {
        format!("{name}/{principal}")
    }
    pub fn service_id(cluster: &str, name: &str) -> String {
        format!("{cluster}/{name}")
    }
}

/// A family's record: the highest revision ever issued.
#[derive(Serialize, Deserialize)]
pub struct FamilyMeta {
    last_revision: i32,
}

pub fn put_family(txn: Txn, name: &str, f: &Family) -> Txn {
    records::FAMILIES.put(
        txn,
        name,
        &FamilyMeta {
            last_revision: f.last_revision,
        },
    )
}

pub type LoadError = gantry_core::RecordError;

impl State {
    /// Rebuilds the state from the store.
    pub async fn load(store: &dyn Store) -> Result<State, LoadError> {
        use records::*;
        let mut st = State::default();
        for (name, c, _) in CLUSTERS.load(store).await? {
            st.clusters.insert(name, c);
        }
        for (name, m, _) in FAMILIES.load(store).await? {
            st.families.entry(name).or_default().last_revision = m.last_revision;
        }
        for (_, r, _) in TASK_DEFS.load(store).await? {
            let family = r.task_definition.family.clone().unwrap_or_default();
            let rev = r.task_definition.revision.unwrap_or_default();
            let f = st.families.entry(family).or_default();
            f.last_revision = f.last_revision.max(rev);
            f.revisions.insert(rev, r);
        }
        for (id, mut r, _) in INSTANCES.load(store).await? {
            r.revision = 1;
            // Agents get a full timeout to come back after a restart of the server.
            r.last_seen = crate::now_secs();
            st.instances.insert(id, r);
        }
        for (id, r, _) in TASKS.load(store).await? {
            st.index_task(&r);
            st.tasks.insert(id, r);
        }
        for (name, r, _) in CAPACITY_PROVIDERS.load(store).await? {
            st.capacity_providers.insert(name, r);
        }
        for (id, r, _) in SECURITY_GROUPS.load(store).await? {
            st.security_groups.insert(id, r);
        }
        for (id, r, _) in SUBNETS.load(store).await? {
            st.subnets.insert(id, r);
        }
        for (_, r, _) in SERVICES.load(store).await? {
            st.services.insert((r.cluster.clone(), r.name.clone()), r);
        }
        for (_, s, _) in SETTINGS.load(store).await? {
            st.settings.insert((s.principal.clone(), s.name), s);
        }
        Ok(st)
    }
}

impl State {
    /// Notes that an instance's placement view changed.
    pub fn mark_dirty(&self, instance: &str) {
        if let Ok(mut d) = self.dirty.lock() {
            d.insert(instance.to_string());
        }
    }

    /// Takes the dirty instances that `pick` selects.
    pub fn take_dirty(&self, pick: impl Fn(&str) -> bool) -> Vec<String> {
        let Ok(mut d) = self.dirty.lock() else {
            return Vec::new();
        };
        let taken: Vec<String> = d.iter().filter(|id| pick(id)).cloned().collect();
        for id in &taken {
            d.remove(id);
        }
        taken
    }

    /// Adds (`sign` 1) or removes (-1) what `t` holds on its instance while in `status`.
    pub fn tally(&mut self, t: &TaskRecord, status: &str, sign: i64) {
        if status == "STOPPED" {
            return;
        }
        let u = self.usage.entry(t.instance.clone()).or_default();
        u.cpu += sign * t.demand_cpu;
        u.memory += sign * t.demand_memory;
        u.gpu += sign * t.demand_gpu;
        let add = |n: &mut u32| *n = n.saturating_add_signed(sign as i32);
        for p in &t.demand_ports {
            let n = u.ports.entry(*p).or_default();
            add(n);
            if *n == 0 {
                u.ports.remove(p);
            }
        }
        let group = t.task.group.clone().unwrap_or_default();
        let n = u.groups.entry(group.clone()).or_default();
        add(n);
        if *n == 0 {
            u.groups.remove(&group);
        }
        match TaskState::parse(status).unwrap_or(TaskState::Provisioning) {
            TaskState::Running => add(&mut u.running),
            s if s < TaskState::Running => add(&mut u.pending),
            _ => {}
        }
        self.mark_dirty(&t.instance);
    }

    /// Adds a task to the secondary indexes.
    pub fn index_task(&mut self, t: &TaskRecord) {
        self.tally(t, t.last_status(), 1);
        self.mark_dirty(&t.instance);
        if let Some((svc, _)) = &t.service {
            self.tasks_by_service
                .entry((t.cluster.clone(), svc.clone()))
                .or_default()
                .insert(t.id.clone());
        }
        self.tasks_by_instance
            .entry(t.instance.clone())
            .or_default()
            .insert(t.id.clone());
        if let Some(tok) = &t.client_token {
            self.client_tokens
                .entry((t.cluster.clone(), tok.clone()))
                .or_default()
                .push(t.id.clone());
        }
    }

    /// Removes a task and its index entries.
    pub fn remove_task(&mut self, id: &str) -> Option<TaskRecord> {
        let t = self.tasks.remove(id)?;
        self.tally(&t, t.last_status(), -1);
        if let Some((svc, _)) = &t.service {
            if let Some(set) = self
                .tasks_by_service
                .get_mut(&(t.cluster.clone(), svc.clone()))
            {
                set.remove(id);
            }
        }
        if let Some(set) = self.tasks_by_instance.get_mut(&t.instance) {
            set.remove(id);
        }
        if let Some(tok) = &t.client_token {
            self.client_tokens.remove(&(t.cluster.clone(), tok.clone()));
        }
        Some(t)
    }

    /// The tasks of a service.
    pub fn service_tasks<'a>(
        &'a self,
        cluster: &str,
        service: &str,
    ) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.tasks_by_service
            .get(&(cluster.to_string(), service.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// The tasks placed on an instance.
    pub fn instance_tasks<'a>(
        &'a self,
        instance: &str,
    ) -> impl Iterator<Item = &'a TaskRecord> + 'a {
        self.tasks_by_instance
            .get(instance)
            .into_iter()
            .flatten()
            .filter_map(|id| self.tasks.get(id))
    }

    /// Marks an instance's desired set as changed, so its agent's poll answers.
    pub fn bump(&mut self, instance: &str) {
        if let Some(i) = self.instances.get_mut(instance) {
            i.revision += 1;
            self.bumped.push(instance.to_string());
        }
    }
}
