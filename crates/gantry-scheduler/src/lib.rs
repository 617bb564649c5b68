//! gantry-scheduler: where tasks go. Pure: a function from a snapshot of a cluster's instances
//! and a demand to a plan. The server commits plans in one place, re-checking [`fits`] against
//! the latest state, so concurrent placements cannot over-commit an instance.
//!
//! This is the resource-fit core: cpu units, memory MiB and host ports (TCP and UDP), on ACTIVE
//! instances whose agent is connected. Strategies and constraints build on it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A transport protocol of a host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

/// One container instance as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// An identifier the caller understands (the instance ARN).
    pub id: String,
    pub active: bool,
    pub agent_connected: bool,
    pub remaining_cpu: i64,
    pub remaining_memory: i64,
    /// Host ports in use or reserved.
    pub used_ports: BTreeSet<(u16, Proto)>,
    /// Tasks running or pending on it (for tie-breaking).
    pub tasks: u32,
}

/// What one task needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demand {
    pub cpu: i64,
    pub memory: i64,
    /// Static host ports.
    pub ports: Vec<(u16, Proto)>,
}

/// Why a task does not fit an instance, with ECS's reason strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misfit {
    Agent,
    Cpu,
    Memory,
    Ports,
    Inactive,
}

impl Misfit {
    /// The `failures[].reason` ECS reports.
    pub fn reason(self) -> &'static str {
        match self {
            Misfit::Agent => "AGENT",
            Misfit::Cpu => "RESOURCE:CPU",
            Misfit::Memory => "RESOURCE:MEMORY",
            Misfit::Ports => "RESOURCE:PORTS",
            Misfit::Inactive => "INACTIVE",
        }
    }
}

/// Whether `demand` fits `inst` now.
pub fn fits(inst: &Instance, demand: &Demand) -> Result<(), Misfit> {
    if !inst.active {
        return Err(Misfit::Inactive);
    }
    if !inst.agent_connected {
        return Err(Misfit::Agent);
    }
    if demand.cpu > inst.remaining_cpu {
        return Err(Misfit::Cpu);
    }
    if demand.memory > inst.remaining_memory {
        return Err(Misfit::Memory);
    }
    let mut seen = BTreeSet::new();
    for p in &demand.ports {
        if inst.used_ports.contains(p) || !seen.insert(*p) {
            return Err(Misfit::Ports);
        }
    }
    Ok(())
}

/// Takes `demand` out of `inst`'s remaining resources.
pub fn reserve(inst: &mut Instance, demand: &Demand) {
    inst.remaining_cpu -= demand.cpu;
    inst.remaining_memory -= demand.memory;
    inst.used_ports.extend(demand.ports.iter().copied());
    inst.tasks += 1;
}

/// The outcome of placing `count` copies of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Index into the snapshot's instances, one per placed task.
    pub placements: Vec<usize>,
    /// Tasks that could not be placed, each with an instance id and the reason it was refused.
    /// Empty id when there are no instances at all.
    pub failures: Vec<(String, Misfit)>,
}

/// Places `count` copies of `demand` on `instances`, spreading over the instances with the
/// fewest tasks (ties: most remaining memory, then id), so each placed task updates the picture
/// for the next. What fits is placed; one failure per instance is reported for the rest.
pub fn place(instances: &[Instance], demand: &Demand, count: usize) -> Plan {
    let mut snapshot = instances.to_vec();
    let mut placements = Vec::new();
    for _ in 0..count {
        let best = snapshot
            .iter()
            .enumerate()
            .filter(|(_, i)| fits(i, demand).is_ok())
            .min_by(|(_, a), (_, b)| {
                a.tasks
                    .cmp(&b.tasks)
                    .then(b.remaining_memory.cmp(&a.remaining_memory))
                    .then(a.id.cmp(&b.id))
            })
            .map(|(ix, _)| ix);
        match best {
            Some(ix) => {
                reserve(&mut snapshot[ix], demand);
                placements.push(ix);
            }
            None => break,
        }
    }
    let failures = if placements.len() < count {
        snapshot
            .iter()
            .filter_map(|i| fits(i, demand).err().map(|m| (i.id.clone(), m)))
            .collect()
    } else {
        Vec::new()
    };
    Plan {
        placements,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inst(id: &str, cpu: i64, mem: i64) -> Instance {
        Instance {
            id: id.into(),
            active: true,
            agent_connected: true,
            remaining_cpu: cpu,
            remaining_memory: mem,
            used_ports: BTreeSet::new(),
            tasks: 0,
        }
    }

    #[test]
    fn reasons() {
        let d = Demand {
            cpu: 10,
            memory: 10,
            ports: vec![(80, Proto::Tcp)],
        };
        let mut i = inst("a", 5, 100);
        assert_eq!(fits(&i, &d), Err(Misfit::Cpu));
        i.remaining_cpu = 100;
        i.remaining_memory = 5;
        assert_eq!(fits(&i, &d), Err(Misfit::Memory));
        i.remaining_memory = 100;
        i.used_ports.insert((80, Proto::Tcp));
        assert_eq!(fits(&i, &d), Err(Misfit::Ports));
        i.used_ports.clear();
        i.used_ports.insert((80, Proto::Udp));
        assert_eq!(fits(&i, &d), Ok(()));
        i.agent_connected = false;
        assert_eq!(fits(&i, &d).map_err(Misfit::reason), Err("AGENT"));
    }

    #[test]
    fn places_what_fits_and_reports_the_rest() {
        let instances = vec![inst("a", 1024, 300), inst("b", 1024, 100)];
        let plan = place(
            &instances,
            &Demand {
                cpu: 0,
                memory: 100,
                ports: vec![],
            },
            10,
        );
        assert_eq!(plan.placements.len(), 4);
        assert_eq!(plan.failures.len(), 2);
        assert!(plan.failures.iter().all(|(_, m)| *m == Misfit::Memory));
    }

    #[test]
    fn static_ports_allow_one_task_per_instance() {
        let instances = vec![inst("a", 4096, 4096), inst("b", 4096, 4096)];
        let plan = place(
            &instances,
            &Demand {
                cpu: 1,
                memory: 1,
                ports: vec![(80, Proto::Tcp)],
            },
            3,
        );
        assert_eq!(plan.placements, vec![0, 1]);
        assert_eq!(plan.failures.len(), 2);
    }

    proptest! {
        #[test]
        fn never_over_commits(
            caps in prop::collection::vec((0i64..4096, 0i64..4096), 0..6),
            cpu in 0i64..1024, mem in 1i64..1024, count in 0usize..12,
        ) {
            let instances: Vec<Instance> =
                caps.iter().enumerate().map(|(i, (c, m))| inst(&format!("i{i}"), *c, *m)).collect();
            let d = Demand { cpu, memory: mem, ports: vec![] };
            let plan = place(&instances, &d, count);
            prop_assert!(plan.placements.len() <= count);
            for (ix, i) in instances.iter().enumerate() {
                let n = plan.placements.iter().filter(|p| **p == ix).count() as i64;
                prop_assert!(n * cpu <= i.remaining_cpu && n * mem <= i.remaining_memory);
            }
            if plan.placements.len() < count {
                prop_assert!(!plan.failures.is_empty() || instances.is_empty());
            }
        }
    }
}
