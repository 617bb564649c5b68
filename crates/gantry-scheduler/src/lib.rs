//! gantry-scheduler: where tasks go. Pure: a function from a snapshot of a cluster's instances
//! and a request to a plan; deterministic for a seed. The server commits plans in one place,
//! re-checking [`check`] against the latest state, so concurrent placements cannot over-commit.
//!
//! The pipeline is ECS's: (1) resources (cpu, memory, GPUs, host ports) and required attributes,
//! (2) constraints (`distinctInstance`, `memberOf` in the [`query`] language), both binding, then
//! (3) strategies (`binpack`, `spread`, `random`), applied in order as tie-breakers.

pub mod query;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A transport protocol of a host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// An instance's status as placement sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    /// No new tasks (UpdateContainerInstancesState).
    Draining,
    Inactive,
}

/// One container instance as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// An identifier the caller understands (the instance ARN).
    pub id: String,
    pub status: Status,
    pub agent_connected: bool,
    pub remaining_cpu: i64,
    pub remaining_memory: i64,
    pub remaining_gpu: i64,
    /// Host ports in use or reserved.
    pub used_ports: BTreeSet<(u16, Proto)>,
    /// Attributes (built-in and custom); a value of `None` is an attribute without value.
    pub attributes: BTreeMap<String, Option<String>>,
    pub agent_version: Option<String>,
    pub ec2_instance_id: Option<String>,
    /// Seconds since the epoch.
    pub registered_at: f64,
    pub running_tasks: u32,
    /// Unstopped tasks on the instance, by task group.
    pub groups: BTreeMap<String, u32>,
}

impl Instance {
    /// An ACTIVE, connected instance with the given resources and nothing else.
    pub fn new(id: impl Into<String>, cpu: i64, memory: i64) -> Instance {
        Instance {
            id: id.into(),
            status: Status::Active,
            agent_connected: true,
            remaining_cpu: cpu,
            remaining_memory: memory,
            remaining_gpu: 0,
            used_ports: BTreeSet::new(),
            attributes: BTreeMap::new(),
            agent_version: None,
            ec2_instance_id: None,
            registered_at: 0.0,
            running_tasks: 0,
            groups: BTreeMap::new(),
        }
    }

    /// All unstopped tasks on the instance.
    pub fn task_count(&self) -> u32 {
        self.groups.values().sum()
    }
}

/// What one task needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    pub cpu: i64,
    pub memory: i64,
    pub gpu: i64,
    /// Static host ports.
    pub ports: Vec<(u16, Proto)>,
    /// Attributes the instance must have (capabilities the task definition uses).
    pub required_attributes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId` or `host`.
    Instance,
    /// `attribute:<name>`.
    Attribute(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    Binpack(BinpackField),
    Spread(SpreadField),
    Random,
}

#[derive(Debug, Clone)]
pub enum Constraint {
    DistinctInstance,
    MemberOf(query::Query),
}

/// A placement request: `count` copies of one task.
#[derive(Debug, Clone)]
pub struct Request {
    pub demand: Demand,
    pub count: usize,
    pub strategies: Vec<Strategy>,
    pub constraints: Vec<Constraint>,
    /// The task group (spread and distinctInstance count tasks of this group).
    pub group: String,
    pub seed: u64,
}

/// Why a task does not fit an instance, with ECS's reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfit {
    Inactive,
    Draining,
    Agent,
    Cpu,
    Memory,
    Gpu,
    Ports,
    PortsUdp,
    Attribute,
    MemberOf,
    DistinctInstance,
}

impl Misfit {
    /// The `failures[].reason` ECS reports.
    pub fn reason(self) -> &'static str {
        match self {
            Misfit::Inactive => "INACTIVE",
            Misfit::Draining => "DRAINING",
            Misfit::Agent => "AGENT",
            Misfit::Cpu => "RESOURCE:CPU",
            Misfit::Memory => "RESOURCE:MEMORY",
            Misfit::Gpu => "RESOURCE:GPU",
            Misfit::Ports => "RESOURCE:PORTS",
            Misfit::PortsUdp => "RESOURCE:PORTS_UDP",
            Misfit::Attribute => "ATTRIBUTE",
            Misfit::MemberOf => "MemberOf placement constraint unsatisfied.",
            Misfit::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
        }
    }
}

/// What this request has already put on an instance.
#[derive(Debug, Clone, Copy, Default)]
struct Placed {
    tasks: u32,
}

/// An instance seen with this request's placements added, for constraint evaluation.
struct View<'a> {
    inst: &'a Instance,
    group: &'a str,
    placed: u32,
}

impl query::Subject for View<'_> {
    fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.inst.attributes.get(name).map(|v| v.as_deref())
    }
    fn agent_connected(&self) -> bool {
        self.inst.agent_connected
    }
    fn agent_version(&self) -> Option<&str> {
        self.inst.agent_version.as_deref()
    }
    fn ec2_instance_id(&self) -> Option<&str> {
        self.inst.ec2_instance_id.as_deref()
    }
    fn registered_at(&self) -> f64 {
        self.inst.registered_at
    }
    fn running_tasks_count(&self) -> u32 {
        self.inst.running_tasks
    }
    fn has_group(&self, g: &str) -> bool {
        self.inst.groups.get(g).is_some_and(|n| *n > 0) || (self.placed > 0 && g == self.group)
    }
    fn groups(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .inst
            .groups
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(g, _)| g.as_str())
            .collect();
        if self.placed > 0 && !v.contains(&self.group) {
            v.push(self.group);
        }
        v
    }
}

/// The resource and attribute checks, with `placed` tasks of `d` already added.
fn check_resources(inst: &Instance, d: &Demand, placed: u32) -> Result<(), Misfit> {
    match inst.status {
        Status::Inactive => return Err(Misfit::Inactive),
        Status::Draining => return Err(Misfit::Draining),
        Status::Active => {}
    }
    if !inst.agent_connected {
        return Err(Misfit::Agent);
    }
    let n = i64::from(placed) + 1;
    if d.cpu.saturating_mul(n) > inst.remaining_cpu {
        return Err(Misfit::Cpu);
    }
    if d.memory.saturating_mul(n) > inst.remaining_memory {
        return Err(Misfit::Memory);
    }
    if d.gpu.saturating_mul(n) > inst.remaining_gpu {
        return Err(Misfit::Gpu);
    }
    if !d.ports.is_empty() {
        let misfit = |p: &(u16, Proto)| {
            if p.1 == Proto::Udp {
                Misfit::PortsUdp
            } else {
                Misfit::Ports
            }
        };
        if placed > 0 {
            return Err(misfit(&d.ports[0]));
        }
        let mut seen = BTreeSet::new();
        for p in &d.ports {
            if inst.used_ports.contains(p) || !seen.insert(*p) {
                return Err(misfit(p));
            }
        }
    }
    if d.required_attributes
        .iter()
        .any(|a| !inst.attributes.contains_key(a))
    {
        return Err(Misfit::Attribute);
    }
    Ok(())
}

/// Whether one task of `req` may go on `inst` now (`placed` of them already went there in this
/// request): resources, then constraints.
pub fn check(inst: &Instance, req: &Request, placed: u32) -> Result<(), Misfit> {
    check_resources(inst, &req.demand, placed)?;
    check_constraints(inst, req, placed, true)
}

fn check_constraints(
    inst: &Instance,
    req: &Request,
    placed: u32,
    include_static: bool,
) -> Result<(), Misfit> {
    let view = View {
        inst,
        group: &req.group,
        placed,
    };
    for c in &req.constraints {
        match c {
            Constraint::DistinctInstance => {
                if placed > 0 || inst.groups.get(&req.group).is_some_and(|n| *n > 0) {
                    return Err(Misfit::DistinctInstance);
                }
            }
            Constraint::MemberOf(q) => {
                if (include_static || q.expr.depends_on_tasks()) && !q.expr.eval(&view) {
                    return Err(Misfit::MemberOf);
                }
            }
        }
    }
    Ok(())
}

/// The outcome of placing `count` copies of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Index into the snapshot's instances, one per placed task.
    pub placements: Vec<usize>,
    /// When not everything was placed: each instance's reason for refusing one more.
    pub failures: Vec<(String, Misfit)>,
}

/// At most this many cached expressions, and (attribute, group) count tables, per snapshot.
const MAX_MEMO: usize = 256;

/// A small deterministic PRNG (SplitMix64): placement stays reproducible for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The default strategies when a RunTask names none: spread over availability zones, then over
/// instances (the fewest tasks of the group), as ECS does.
pub fn default_strategies() -> Vec<Strategy> {
    vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Spread(SpreadField::Instance),
    ]
}

/// Places `req.count` copies of a task on `instances` (a one-off [`Snapshot`]).
pub fn place(instances: &[Instance], req: &Request) -> Plan {
    Snapshot::new(instances.to_vec()).place(req)
}

/// A cluster as placement sees it, with what can be computed once and reused across requests:
/// results of constraints that do not depend on tasks, attribute values interned per
/// attribute, and each group's task counts per attribute value. [`Snapshot::commit`] applies a
/// placement, keeping all of it current.
#[derive(Debug, Clone)]
pub struct Snapshot {
    instances: Vec<Instance>,
    /// Expression source → the expression and whether each instance satisfies it
    /// (task-independent expressions only).
    memo: HashMap<String, (query::Expr, Vec<bool>)>,
    /// Attribute name → each instance's value id.
    columns: HashMap<String, Column>,
    /// (attribute, group) → the group's tasks per value id.
    spread_counts: HashMap<(String, String), Vec<u32>>,
}

/// One attribute's values, interned.
#[derive(Debug, Clone, Default)]
struct Column {
    of: Vec<u32>,
    ids: HashMap<Option<String>, u32>,
}

impl Column {
    fn id(&mut self, inst: &Instance, name: &str) -> u32 {
        let v = inst
            .attributes
            .get(name)
            .map(|v| v.clone().unwrap_or_default());
        let next = self.ids.len() as u32;
        *self.ids.entry(v).or_insert(next)
    }
}

impl Snapshot {
    pub fn new(instances: Vec<Instance>) -> Snapshot {
        Snapshot {
            instances,
            memo: HashMap::new(),
            columns: HashMap::new(),
            spread_counts: HashMap::new(),
        }
    }

    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    fn column(&mut self, name: &str) -> &Column {
        if !self.columns.contains_key(name) {
            let mut col = Column::default();
            col.of = self
                .instances
                .iter()
                .map(|i| col.id(i, name))
                .collect::<Vec<_>>();
            self.columns.insert(name.to_string(), col);
        }
        &self.columns[name]
    }

    fn counts(&mut self, attr: &str, group: &str) -> Vec<u32> {
        let key = (attr.to_string(), group.to_string());
        if self.spread_counts.len() >= MAX_MEMO && !self.spread_counts.contains_key(&key) {
            self.spread_counts.clear();
        }
        let n = self.column(attr).ids.len();
        if let Some(c) = self.spread_counts.get_mut(&key) {
            c.resize(n, 0);
            return c.clone();
        }
        let of = self.column(attr).of.clone();
        let mut counts = vec![0u32; n];
        for (ix, i) in self.instances.iter().enumerate() {
            counts[of[ix] as usize] += i.groups.get(group).copied().unwrap_or(0);
        }
        self.spread_counts.insert(key, counts.clone());
        counts
    }

    fn static_ok(&mut self, q: &query::Query) -> &Vec<bool> {
        if !self.memo.contains_key(&q.source) {
            if self.memo.len() >= MAX_MEMO {
                self.memo.clear();
            }
            let v = self
                .instances
                .iter()
                .map(|i| {
                    q.expr.eval(&View {
                        inst: i,
                        group: "",
                        placed: 0,
                    })
                })
                .collect();
            self.memo.insert(q.source.clone(), (q.expr.clone(), v));
        }
        &self.memo[&q.source].1
    }

    /// Replaces instance `ix` with a fresh view of it (its tasks, attributes or status changed),
    /// keeping the caches current.
    pub fn replace(&mut self, ix: usize, new: Instance) {
        let Some(old) = self.instances.get(ix) else {
            return;
        };
        for (expr, ok) in self.memo.values_mut() {
            ok[ix] = expr.eval(&View {
                inst: &new,
                group: "",
                placed: 0,
            });
        }
        // Each attribute's old and new value id, computed once.
        let mut moved: HashMap<String, (u32, u32)> = HashMap::new();
        for (attr, col) in self.columns.iter_mut() {
            let old_id = col.of[ix];
            let new_id = col.id(&new, attr);
            col.of[ix] = new_id;
            moved.insert(attr.clone(), (old_id, new_id));
        }
        for ((attr, group), counts) in self.spread_counts.iter_mut() {
            let (Some(&(old_id, new_id)), Some(col)) = (moved.get(attr), self.columns.get(attr))
            else {
                continue;
            };
            counts.resize(counts.len().max(col.ids.len()), 0);
            let before = old.groups.get(group).copied().unwrap_or(0);
            let slot = &mut counts[old_id as usize];
            *slot = slot.saturating_sub(before);
            counts[new_id as usize] += new.groups.get(group).copied().unwrap_or(0);
        }
        self.instances[ix] = new;
    }

    /// Updates whether instance `ix`'s agent is connected (it changes with time alone).
    pub fn set_agent_connected(&mut self, ix: usize, connected: bool) {
        if let Some(i) = self.instances.get_mut(ix) {
            i.agent_connected = connected;
        }
    }

    /// Applies one placement of `req`'s task to instance `ix`.
    pub fn commit(&mut self, ix: usize, req: &Request) {
        let Some(i) = self.instances.get_mut(ix) else {
            return;
        };
        i.remaining_cpu -= req.demand.cpu;
        i.remaining_memory -= req.demand.memory;
        i.remaining_gpu -= req.demand.gpu;
        i.used_ports.extend(req.demand.ports.iter().copied());
        *i.groups.entry(req.group.clone()).or_default() += 1;
        for ((attr, group), counts) in self.spread_counts.iter_mut() {
            if *group == req.group {
                if let Some(col) = self.columns.get(attr) {
                    counts[col.of[ix] as usize] += 1;
                }
            }
        }
    }

    /// Places `req.count` copies of a task (without committing them).
    pub fn place(&mut self, req: &Request) -> Plan {
        let n = self.instances.len();
        // Constraints that cannot change as tasks are placed: evaluated once per snapshot.
        let mut static_ok = vec![true; n];
        for c in &req.constraints {
            if let Constraint::MemberOf(q) = c {
                if !q.expr.depends_on_tasks() {
                    let ok = self.static_ok(q);
                    for (s, o) in static_ok.iter_mut().zip(ok) {
                        *s &= *o;
                    }
                }
            }
        }
        let dynamic = req.constraints.iter().any(|c| match c {
            Constraint::DistinctInstance => true,
            Constraint::MemberOf(q) => q.expr.depends_on_tasks(),
        });
        let mut spreads: Vec<(Vec<u32>, Vec<u32>)> = Vec::new();
        for s in &req.strategies {
            if let Strategy::Spread(SpreadField::Attribute(name)) = s {
                let counts = self.counts(name, &req.group);
                let of = self.column(name).of.clone();
                spreads.push((of, counts));
            }
        }
        let instances = &self.instances;
        let mut placed = vec![Placed::default(); n];
        let mut rng = Rng(req.seed);
        let mut placements = Vec::with_capacity(req.count);
        let mut cands: Vec<usize> = Vec::with_capacity(n);
        for _ in 0..req.count {
            cands.clear();
            for (ix, inst) in instances.iter().enumerate() {
                if !static_ok[ix] {
                    continue;
                }
                let p = placed[ix].tasks;
                if check_resources(inst, &req.demand, p).is_err() {
                    continue;
                }
                if dynamic && check_constraints(inst, req, p, false).is_err() {
                    continue;
                }
                cands.push(ix);
            }
            if cands.is_empty() {
                break;
            }
            let mut spread_ix = 0;
            for s in &req.strategies {
                if cands.len() <= 1 {
                    break;
                }
                match s {
                    Strategy::Binpack(f) => {
                        keep_min(&mut cands, |ix| {
                            let i = &instances[ix];
                            let k = i64::from(placed[ix].tasks) + 1;
                            match f {
                                BinpackField::Cpu => i
                                    .remaining_cpu
                                    .saturating_sub(k.saturating_mul(req.demand.cpu)),
                                BinpackField::Memory => i
                                    .remaining_memory
                                    .saturating_sub(k.saturating_mul(req.demand.memory)),
                            }
                        });
                    }
                    Strategy::Spread(SpreadField::Instance) => {
                        keep_min(&mut cands, |ix| {
                            i64::from(
                                instances[ix].groups.get(&req.group).copied().unwrap_or(0)
                                    + placed[ix].tasks,
                            )
                        });
                    }
                    Strategy::Spread(SpreadField::Attribute(_)) => {
                        let (of, counts) = &spreads[spread_ix];
                        keep_min(&mut cands, |ix| i64::from(counts[of[ix] as usize]));
                        spread_ix += 1;
                    }
                    Strategy::Random => {
                        let pick = cands[(rng.next() % cands.len() as u64) as usize];
                        cands.clear();
                        cands.push(pick);
                    }
                }
            }
            let chosen = cands[0];
            placed[chosen].tasks += 1;
            for (of, counts) in &mut spreads {
                counts[of[chosen] as usize] += 1;
            }
            placements.push(chosen);
        }
        let failures = if placements.len() < req.count {
            instances
                .iter()
                .enumerate()
                .filter_map(|(ix, i)| {
                    check(i, req, placed[ix].tasks)
                        .err()
                        .map(|m| (i.id.clone(), m))
                })
                .collect()
        } else {
            Vec::new()
        };
        Plan {
            placements,
            failures,
        }
    }
}

/// Whether an instance satisfies an expression (ListContainerInstances' filter).
pub fn matches(e: &query::Expr, inst: &Instance) -> bool {
    e.eval(&View {
        inst,
        group: "",
        placed: 0,
    })
}

/// Keeps the candidates with the smallest key.
fn keep_min(cands: &mut Vec<usize>, key: impl Fn(usize) -> i64) {
    let min = cands.iter().map(|&c| key(c)).min().unwrap_or(0);
    cands.retain(|&c| key(c) == min);
}

#[cfg(test)]
mod tests;
