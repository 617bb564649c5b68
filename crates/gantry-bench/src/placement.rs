//! `gantry-bench placement`: placements per second of the pure engine on one core, at 100, 1,000
//! and 10,000 instances, for a fixed mix of requests: half binpack(memory), half
//! spread(availability zone) then binpack(memory), a quarter with a memberOf constraint. Each
//! placement is committed to the snapshot (resources reserved) before the next, as the server
//! does.

use gantry_scheduler::{
    query, BinpackField, Constraint, Demand, Instance, Request, Snapshot, SpreadField, Strategy,
};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Cluster sizes to measure
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    sizes: Vec<usize>,
    /// Placements per size
    #[arg(long, default_value_t = 100_000)]
    placements: usize,
}

/// SplitMix64, so that every run measures the same cluster.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TYPES: [&str; 6] = [
    "m5.large",
    "m5.xlarge",
    "c5.large",
    "c5.2xlarge",
    "r5.large",
    "t3.medium",
];

pub fn cluster(n: usize, seed: u64) -> Vec<Instance> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut inst = Instance::new(
                format!("arn:aws:ecs:us-east-1:000000000000:container-instance/bench/{i:032x}"),
                1 << 40,
                1 << 40,
            );
            let a = &mut inst.attributes;
            a.insert(
                "ecs.availability-zone".into(),
                Some(format!("local-1{}", (b'a' + (i % 3) as u8) as char)),
            );
            a.insert(
                "ecs.instance-type".into(),
                Some(TYPES[rng.below(TYPES.len() as u64) as usize].into()),
            );
            a.insert("ecs.os-type".into(), Some("linux".into()));
            a.insert("ecs.cpu-architecture".into(), Some("x86_64".into()));
            a.insert(
                "tier".into(),
                Some(["gold", "silver", "bronze"][rng.below(3) as usize].into()),
            );
            for cap in 0..15 {
                a.insert(format!("com.amazonaws.ecs.capability.feature-{cap}"), None);
            }
            inst.remaining_memory = 8192 + rng.below(57_344) as i64;
            inst.remaining_cpu = 1_000_000 + rng.below(12_288) as i64;
            inst.agent_version = Some("0.1.0".into());
            inst
        })
        .collect()
}

/// The four request kinds of the mix, in turn.
pub fn mix() -> Vec<Request> {
    let demand = Demand {
        cpu: 16,
        memory: 32,
        ..Demand::default()
    };
    let binpack = vec![Strategy::Binpack(BinpackField::Memory)];
    let spread = vec![
        Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        Strategy::Binpack(BinpackField::Memory),
    ];
    let member =
        query::Query::parse("attribute:ecs.instance-type =~ m5.* and attribute:tier != bronze")
            .unwrap_or_else(|e| panic!("{e}"));
    let req = |strategies: Vec<Strategy>, constraints: Vec<Constraint>, group: &str| Request {
        demand: demand.clone(),
        count: 1,
        strategies,
        constraints,
        group: group.into(),
        seed: 1,
    };
    vec![
        req(binpack.clone(), vec![], "family:a"),
        req(binpack, vec![Constraint::MemberOf(member)], "family:b"),
        req(spread.clone(), vec![], "family:c"),
        req(spread, vec![], "family:d"),
    ]
}

pub fn run(args: Args) -> anyhow::Result<()> {
    println!("pure placement engine, one core, mix: 1/2 binpack(memory), 1/2 spread(zone)+binpack, 1/4 memberOf");
    println!(
        "{:>10} {:>12} {:>12} {:>14}",
        "instances", "placements", "seconds", "placements/s"
    );
    for &n in &args.sizes {
        let mut snap = Snapshot::new(cluster(n, 42));
        let reqs = mix();
        let count = if n >= 10_000 {
            args.placements / 10
        } else {
            args.placements
        };
        let started = Instant::now();
        let mut placed = 0usize;
        for i in 0..count {
            let r = &reqs[i % reqs.len()];
            let plan = snap.place(r);
            for &ix in &plan.placements {
                snap.commit(ix, r);
                placed += 1;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{n:>10} {placed:>12} {secs:>12.3} {:>14.0}",
            placed as f64 / secs
        );
    }
    Ok(())
}
