use super::Strategy as Place;
use super::*;
use proptest::prelude::*;
use proptest::strategy::Strategy;

fn req(
    demand: Demand,
    count: usize,
    strategies: Vec<Place>,
    constraints: Vec<Constraint>,
) -> Request {
    Request {
        demand,
        count,
        strategies,
        constraints,
        group: "family:web".into(),
        seed: 7,
    }
}

fn mem(m: i64) -> Demand {
    Demand {
        memory: m,
        ..Demand::default()
    }
}

fn with_az(mut i: Instance, az: &str) -> Instance {
    i.attributes
        .insert("ecs.availability-zone".into(), Some(az.into()));
    i
}

#[test]
fn reasons_follow_ecs_order() {
    let d = Demand {
        cpu: 10,
        memory: 10,
        gpu: 0,
        ports: vec![(80, Proto::Tcp)],
        required_attributes: vec!["cap".into()],
    };
    let r = req(d, 1, vec![], vec![]);
    let mut i = Instance::new("a", 5, 100);
    assert_eq!(check(&i, &r, 0), Err(Misfit::Cpu));
    i.remaining_cpu = 100;
    i.remaining_memory = 5;
    assert_eq!(check(&i, &r, 0), Err(Misfit::Memory));
    i.remaining_memory = 100;
    i.used_ports.insert((80, Proto::Tcp));
    assert_eq!(check(&i, &r, 0), Err(Misfit::Ports));
    i.used_ports.clear();
    i.used_ports.insert((80, Proto::Udp));
    assert_eq!(check(&i, &r, 0), Err(Misfit::Attribute));
    i.attributes.insert("cap".into(), None);
    assert_eq!(check(&i, &r, 0), Ok(()));
    i.agent_connected = false;
    assert_eq!(check(&i, &r, 0).map_err(Misfit::reason), Err("AGENT"));
    i.status = Status::Draining;
    assert_eq!(check(&i, &r, 0), Err(Misfit::Draining));
}

#[test]
fn places_what_fits_and_reports_the_rest() {
    let instances = vec![Instance::new("a", 1024, 300), Instance::new("b", 1024, 100)];
    let plan = place(&instances, &req(mem(100), 10, default_strategies(), vec![]));
    assert_eq!(plan.placements.len(), 4);
    assert_eq!(
        plan.failures,
        vec![("a".into(), Misfit::Memory), ("b".into(), Misfit::Memory)]
    );
}

#[test]
fn binpack_fills_the_fullest_instance_first() {
    let instances = vec![
        Instance::new("a", 4096, 1000),
        Instance::new("b", 4096, 400),
        Instance::new("c", 4096, 700),
    ];
    let plan = place(
        &instances,
        &req(
            mem(200),
            3,
            vec![Place::Binpack(BinpackField::Memory)],
            vec![],
        ),
    );
    assert_eq!(plan.placements, vec![1, 1, 2]);
}

#[test]
fn spread_over_zones_then_instances() {
    let instances = vec![
        with_az(Instance::new("a1", 4096, 4096), "a"),
        with_az(Instance::new("a2", 4096, 4096), "a"),
        with_az(Instance::new("b1", 4096, 4096), "b"),
    ];
    let plan = place(&instances, &req(mem(10), 4, default_strategies(), vec![]));
    // Zones alternate a, b, a, b; within zone a, the emptier instance.
    let zones: Vec<&str> = plan
        .placements
        .iter()
        .map(|&i| if i == 2 { "b" } else { "a" })
        .collect();
    assert_eq!(zones, ["a", "b", "a", "b"]);
    assert!(plan.placements.contains(&0) && plan.placements.contains(&1));
}

#[test]
fn distinct_instance_and_member_of() {
    let mut instances = vec![
        with_az(Instance::new("a", 4096, 4096), "local-1a"),
        with_az(Instance::new("b", 4096, 4096), "local-1b"),
        with_az(Instance::new("c", 4096, 4096), "local-1a"),
    ];
    instances[2].groups.insert("family:web".into(), 1);
    let plan = place(
        &instances,
        &req(mem(10), 3, vec![], vec![Constraint::DistinctInstance]),
    );
    assert_eq!(plan.placements, vec![0, 1]);
    assert!(plan
        .failures
        .iter()
        .all(|(_, m)| *m == Misfit::DistinctInstance));
    let member = query::Query::parse("attribute:ecs.availability-zone == local-1a").unwrap();
    let plan = place(
        &instances,
        &req(mem(10), 2, vec![], vec![Constraint::MemberOf(member)]),
    );
    assert!(plan.placements.iter().all(|&i| i == 0 || i == 2));
    // Anti-affinity with the task's own group: one per instance, on those without one.
    let anti = query::Query::parse("not(task:group == family:web)").unwrap();
    let plan = place(
        &instances,
        &req(mem(10), 3, vec![], vec![Constraint::MemberOf(anti)]),
    );
    assert_eq!(plan.placements, vec![0, 1]);
    assert_eq!(
        plan.failures.iter().find(|f| f.0 == "c").map(|f| f.1),
        Some(Misfit::MemberOf)
    );
}

#[test]
fn random_is_deterministic_for_a_seed() {
    let instances: Vec<Instance> = (0..20)
        .map(|i| Instance::new(format!("i{i}"), 4096, 4096))
        .collect();
    let r = req(mem(10), 10, vec![Place::Random], vec![]);
    assert_eq!(
        place(&instances, &r).placements,
        place(&instances, &r).placements
    );
    let mut other = r.clone();
    other.seed = 8;
    assert_ne!(
        place(&instances, &r).placements,
        place(&instances, &other).placements
    );
}

fn arb_instance() -> impl Strategy<Value = Instance> {
    (
        0i64..4096,
        0i64..4096,
        0i64..3,
        prop::sample::select(vec!["z1", "z2", "z3"]),
        any::<bool>(),
        0u32..3,
        any::<bool>(),
    )
        .prop_map(|(cpu, mem, gpu, az, connected, existing, port80)| {
            let mut i = with_az(Instance::new("", cpu, mem), az);
            i.remaining_gpu = gpu;
            i.agent_connected = connected;
            if existing > 0 {
                i.groups.insert("family:web".into(), existing);
            }
            if port80 {
                i.used_ports.insert((80, Proto::Tcp));
            }
            if az == "z2" {
                i.attributes.insert("gpu".into(), Some("yes".into()));
            }
            i
        })
}

fn arb_strategies() -> impl Strategy<Value = Vec<Place>> {
    prop::collection::vec(
        prop_oneof![
            Just(Place::Binpack(BinpackField::Memory)),
            Just(Place::Binpack(BinpackField::Cpu)),
            Just(Place::Spread(SpreadField::Instance)),
            Just(Place::Spread(SpreadField::Attribute(
                "ecs.availability-zone".into()
            ))),
            Just(Place::Random),
        ],
        0..3,
    )
}

fn arb_constraints() -> impl Strategy<Value = Vec<Constraint>> {
    prop::collection::vec(
        prop_oneof![
            Just(Constraint::DistinctInstance),
            Just(Constraint::MemberOf(
                query::Query::parse("attribute:ecs.availability-zone != z3").unwrap()
            )),
            Just(Constraint::MemberOf(
                query::Query::parse("attribute:gpu exists or runningTasksCount < 5").unwrap()
            )),
            Just(Constraint::MemberOf(
                query::Query::parse("not(task:group == family:web)").unwrap()
            )),
        ],
        0..2,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn plans_never_over_commit_and_every_constraint_holds(
        mut instances in prop::collection::vec(arb_instance(), 0..8),
        cpu in 0i64..1024, memory in 1i64..1024, gpu in 0i64..2, port in any::<bool>(),
        count in 0usize..12, strategies in arb_strategies(), constraints in arb_constraints(), seed in any::<u64>(),
    ) {
        for (ix, i) in instances.iter_mut().enumerate() {
            i.id = format!("i{ix}");
        }
        let demand = Demand { cpu, memory, gpu, ports: if port { vec![(80, Proto::Tcp)] } else { vec![] }, required_attributes: vec![] };
        let r = Request { demand, count, strategies, constraints: constraints.clone(), group: "family:web".into(), seed };
        let plan = place(&instances, &r);
        prop_assert!(plan.placements.len() <= count);
        for (ix, i) in instances.iter().enumerate() {
            let k = plan.placements.iter().filter(|p| **p == ix).count() as i64;
            if k == 0 { continue; }
            prop_assert!(i.status == Status::Active && i.agent_connected);
            prop_assert!(k * cpu <= i.remaining_cpu && k * memory <= i.remaining_memory && k * gpu <= i.remaining_gpu);
            if port { prop_assert!(k == 1 && !i.used_ports.contains(&(80, Proto::Tcp))); }
            for c in &constraints {
                match c {
                    Constraint::DistinctInstance => prop_assert!(k == 1 && !i.groups.contains_key("family:web")),
                    Constraint::MemberOf(q) => {
                        // Each placed task saw the instance with the tasks placed before it.
                        for before in 0..k as u32 {
                            let v = View { inst: i, group: "family:web", placed: before };
                            prop_assert!(q.expr.eval(&v), "memberOf violated on {}", i.id);
                        }
                    }
                }
            }
        }
        if plan.placements.len() < count {
            prop_assert_eq!(plan.failures.len(), instances.len());
        }
    }

    #[test]
    fn binpack_never_skips_a_fuller_instance_that_fits(
        instances in prop::collection::vec(arb_instance(), 1..8), memory in 1i64..512, count in 1usize..8,
    ) {
        let r = req(mem(memory), count, vec![Place::Binpack(BinpackField::Memory)], vec![]);
        let plan = place(&instances, &r);
        let mut placed = vec![0u32; instances.len()];
        for &chosen in &plan.placements {
            let left = |ix: usize| instances[ix].remaining_memory - i64::from(placed[ix] + 1) * memory;
            for ix in 0..instances.len() {
                if check(&instances[ix], &r, placed[ix]).is_ok() {
                    prop_assert!(left(chosen) <= left(ix), "placed on {chosen} leaving {} while {ix} would leave {}", left(chosen), left(ix));
                }
            }
            placed[chosen] += 1;
        }
    }

    #[test]
    fn spread_keeps_counts_within_one(
        n in 1usize..10, count in 0usize..40, by_zone in any::<bool>(),
    ) {
        let zones = ["z1", "z2", "z3"];
        let instances: Vec<Instance> = (0..n).map(|i| with_az(Instance::new(format!("i{i}"), 1 << 20, 1 << 20), zones[i % 3])).collect();
        let field = if by_zone { SpreadField::Attribute("ecs.availability-zone".into()) } else { SpreadField::Instance };
        let plan = place(&instances, &req(mem(1), count, vec![Place::Spread(field)], vec![]));
        prop_assert_eq!(plan.placements.len(), count);
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        if by_zone {
            for z in zones.iter().take(n.min(3)) { counts.insert(z.to_string(), 0); }
            for &p in &plan.placements { *counts.entry(zones[p % 3].to_string()).or_default() += 1; }
        } else {
            for i in 0..n { counts.insert(format!("i{i}"), 0); }
            for &p in &plan.placements { *counts.entry(format!("i{p}")).or_default() += 1; }
        }
        let (lo, hi) = (counts.values().min().copied().unwrap_or(0), counts.values().max().copied().unwrap_or(0));
        prop_assert!(hi - lo <= 1, "{counts:?}");
    }
}

#[test]
fn a_snapshot_stays_current_across_commits() {
    // Spread over zones across requests: committed placements count for the next request.
    let instances = vec![
        with_az(Instance::new("a", 4096, 4096), "a"),
        with_az(Instance::new("b", 4096, 4096), "b"),
    ];
    let mut snap = Snapshot::new(instances);
    let r = req(
        mem(100),
        1,
        vec![Place::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))],
        vec![],
    );
    let mut zones = Vec::new();
    for _ in 0..4 {
        let p = snap.place(&r);
        snap.commit(p.placements[0], &r);
        zones.push(p.placements[0]);
    }
    assert_eq!(zones, [0, 1, 0, 1]);
    assert_eq!(snap.instances()[0].remaining_memory, 3896);
    assert_eq!(snap.instances()[0].groups["family:web"], 2);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// A snapshot kept current with `replace` plans exactly as one built afresh.
    #[test]
    fn replace_keeps_a_snapshot_equal_to_a_fresh_one(
        instances in prop::collection::vec(arb_instance(), 1..6),
        changes in prop::collection::vec((0usize..6, arb_instance()), 0..6),
        strategies in arb_strategies(), constraints in arb_constraints(), count in 1usize..6,
    ) {
        let name = |mut v: Vec<Instance>| { for (i, x) in v.iter_mut().enumerate() { x.id = format!("i{i}"); } v };
        let mut current = name(instances);
        let r = Request { demand: mem(10), count, strategies, constraints, group: "family:web".into(), seed: 3 };
        let mut cached = Snapshot::new(current.clone());
        let _ = cached.place(&r); // fill the caches
        for (ix, mut inst) in changes {
            let ix = ix % current.len();
            inst.id = format!("i{ix}");
            current[ix] = inst.clone();
            cached.replace(ix, inst);
        }
        prop_assert_eq!(cached.place(&r), Snapshot::new(current).place(&r));
    }
}

/// Two groups spread over one attribute, then the attribute changes on an instance.
#[test]
fn replace_with_several_groups_on_one_attribute() {
    let rack = |r: &str| {
        let mut i = Instance::new("", 4096, 4096);
        i.attributes.insert("rack".into(), Some(r.into()));
        i
    };
    let mut insts = vec![rack("r1"), rack("r2")];
    for (ix, i) in insts.iter_mut().enumerate() {
        i.id = format!("i{ix}");
    }
    let mut snap = Snapshot::new(insts.clone());
    let spread = vec![Place::Spread(SpreadField::Attribute("rack".into()))];
    for g in ["g1", "g2"] {
        let mut r = req(mem(1), 1, spread.clone(), vec![]);
        r.group = g.into();
        let p = snap.place(&r);
        snap.commit(p.placements[0], &r);
        insts[p.placements[0]].groups.insert(g.into(), 1);
    }
    let mut changed = insts[1].clone();
    changed.attributes.insert("rack".into(), Some("r9".into()));
    insts[1] = changed.clone();
    snap.replace(1, changed);
    for g in ["g1", "g2"] {
        let mut r = req(mem(1), 3, spread.clone(), vec![]);
        r.group = g.into();
        assert_eq!(snap.place(&r), Snapshot::new(insts.clone()).place(&r));
    }
}
