//! `gantry-bench service`: time for a 20-replica service to reach 20 RUNNING from nothing, side
//! by side on the same Docker with (a) 20 parallel `docker run -d` of the same image and (b)
//! `docker service create --replicas 20` on Docker Swarm mode (initialised for the run and left
//! again however the run ends). Then, with simulated instances, the time for 1,000 services of
//! 10 tasks each to reach a steady state.

use crate::gantry_bin;
use gantry_testkit::{
    docker, ensure_busybox_image, remove_labelled, temp_dir, AgentProcess, Background,
    GantryProcess, BUSYBOX_IMAGE,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// Replicas of the service
    #[arg(long, default_value_t = 20)]
    replicas: usize,
    /// Rounds of each measurement (the median is reported)
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Simulated services (0 skips that part)
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Simulated instances for the services
    #[arg(long, default_value_t = 500)]
    instances: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

async fn call(g: &GantryProcess, op: &str, body: Value) -> anyhow::Result<Value> {
    let (status, v) = g.call(op, &body.to_string()).await;
    anyhow::ensure!(status == 200, "{op}: {v}");
    Ok(v)
}

async fn wait_running(
    g: &GantryProcess,
    name: &str,
    n: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let v = call(g, "DescribeServices", json!({"services": [name]})).await?;
        if v["services"][0]["runningCount"].as_i64() == Some(n) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} did not reach {n} running"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn gantry_round(bin: &std::path::Path, replicas: usize, round: usize) -> anyhow::Result<f64> {
    let dir = temp_dir(&format!("bench-svc-{round}"));
    let server =
        GantryProcess::start_with(bin, &dir.join("server"), &["--service-interval", "200ms"]).await;
    call(&server, "CreateCluster", json!({})).await?;
    let agent = AgentProcess::start(
        bin,
        &server,
        "default",
        &dir.join("agent"),
        &["--pull-behavior", "prefer-cached", "--stop-timeout", "1s"],
    );
    let mut instance = String::new();
    for _ in 0..500 {
        let v = call(&server, "ListContainerInstances", json!({})).await?;
        if let Some(a) = v["containerInstanceArns"][0].as_str() {
            instance = a.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    anyhow::ensure!(!instance.is_empty(), "the agent did not register");
    call(
        &server,
        "RegisterTaskDefinition",
        json!({"family": "bench-svc", "containerDefinitions": [
        {"name": "main", "image": BUSYBOX_IMAGE, "memory": 16, "command": ["sleep", "3600"]}]}),
    )
    .await?;
    let started = Instant::now();
    call(
        &server,
        "CreateService",
        json!({"serviceName": "bench", "taskDefinition": "bench-svc", "desiredCount": replicas}),
    )
    .await?;
    wait_running(&server, "bench", replicas as i64, Duration::from_secs(300)).await?;
    let secs = started.elapsed().as_secs_f64();
    drop(agent);
    drop(server);
    remove_labelled("gantry.container-instance", &instance);
    Ok(secs)
}

fn docker_run_round(replicas: usize, round: usize) -> anyhow::Result<f64> {
    let value = format!("{}-{round}", std::process::id());
    let label = format!("gantry-bench-raw={value}");
    let started = Instant::now();
    let children: Vec<_> = (0..replicas)
        .map(|_| {
            Command::new("docker")
                .args([
                    "run",
                    "-d",
                    "--label",
                    &label,
                    "-m",
                    "16m",
                    BUSYBOX_IMAGE,
                    "sleep",
                    "3600",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut c in children {
        anyhow::ensure!(c.wait()?.success(), "docker run failed");
    }
    let secs = started.elapsed().as_secs_f64();
    remove_labelled("gantry-bench-raw", &value);
    Ok(secs)
}

/// Leaves swarm mode however the run ends.
struct Swarm;

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["swarm", "leave", "--force"])
            .output();
    }
}

fn swarm_round(replicas: usize, round: usize) -> anyhow::Result<f64> {
    let name = format!("gantry-bench-{round}");
    let started = Instant::now();
    let out = Command::new("docker")
        .args([
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            &name,
            "--replicas",
            &replicas.to_string(),
            "--limit-memory",
            "16m",
            BUSYBOX_IMAGE,
            "sleep",
            "3600",
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker service create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ps = Command::new("docker")
            .args([
                "service",
                "ps",
                &name,
                "--filter",
                "desired-state=running",
                "--format",
                "{{.CurrentState}}",
            ])
            .output()?;
        let running = String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter(|l| l.starts_with("Running"))
            .count();
        if running >= replicas {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "swarm did not reach {replicas} running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let secs = started.elapsed().as_secs_f64();
    let _ = Command::new("docker")
        .args(["service", "rm", &name])
        .output();
    // Wait for the tasks' containers to go before the next round.
    for _ in 0..600 {
        let left = docker(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={name}"),
        ]);
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(secs)
}

async fn many_services(
    bin: &std::path::Path,
    services: usize,
    instances: usize,
) -> anyhow::Result<(f64, f64)> {
    let dir = temp_dir("bench-svc-sim");
    let server =
        GantryProcess::start_with(bin, &dir.join("server"), &["--service-interval", "500ms"]).await;
    call(&server, "CreateCluster", json!({})).await?;
    let token = server.join_token();
    let n = instances.to_string();
    let sim_dir = dir.join("sim").display().to_string();
    let _sim = Background::spawn(
        bin,
        &[
            "sim",
            "--server",
            &server.endpoint(),
            "--join-token",
            &token,
            "--instances",
            &n,
            "--data-dir",
            &sim_dir,
        ],
    );
    loop {
        let mut total = 0;
        let mut token: Option<String> = None;
        loop {
            let body = match &token {
                Some(t) => json!({"nextToken": t}),
                None => json!({}),
            };
            let v = call(&server, "ListContainerInstances", body).await?;
            total += v["containerInstanceArns"].as_array().map_or(0, |a| a.len());
            match v["nextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        if total >= instances {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    call(
        &server,
        "RegisterTaskDefinition",
        json!({"family": "many", "containerDefinitions": [
        {"name": "m", "image": "busybox", "memory": 16}]}),
    )
    .await?;
    let started = Instant::now();
    for i in 0..services {
        call(&server, "CreateService", json!({"serviceName": format!("s{i:04}"), "taskDefinition": "many", "desiredCount": 10})).await?;
    }
    let created = started.elapsed().as_secs_f64();
    let names: Vec<String> = (0..services).map(|i| format!("s{i:04}")).collect();
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let mut steady = 0;
        for chunk in names.chunks(10) {
            let v = call(&server, "DescribeServices", json!({"services": chunk})).await?;
            steady += v["services"].as_array().map_or(0, |a| {
                a.iter()
                    .filter(|s| {
                        s["runningCount"] == 10
                            && s["deployments"].as_array().map(|d| d.len()) == Some(1)
                    })
                    .count()
            });
        }
        if steady == services {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {steady} of {services} services steady"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok((created, started.elapsed().as_secs_f64()))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure_busybox_image();
    let bin = gantry_bin(args.gantry_bin.clone())?;
    let (mut g, mut d, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        g.push(gantry_round(&bin, args.replicas, round).await?);
        d.push(docker_run_round(args.replicas, round)?);
    }
    let swarm_ok = Command::new("docker")
        .args(["swarm", "init", "--advertise-addr", "127.0.0.1"])
        .output()?
        .status
        .success();
    if swarm_ok {
        let _leave = Swarm;
        for round in 0..args.rounds {
            s.push(swarm_round(args.replicas, round)?);
        }
    }
    println!(
        "{} replicas from nothing to all RUNNING, same Docker, median of {} rounds",
        args.replicas, args.rounds
    );
    println!("{:<44} {:>10}", "path", "seconds");
    let gm = median(g);
    let dm = median(d);
    println!(
        "{:<44} {gm:>10.2}",
        "gantry CreateService → runningCount 20"
    );
    println!("{:<44} {dm:>10.2}", "20 parallel docker run -d");
    if swarm_ok {
        println!(
            "{:<44} {:>10.2}",
            "docker service create --replicas 20 (Swarm)",
            median(s)
        );
    } else {
        println!(
            "{:<44} {:>10}",
            "docker service create (Swarm)", "n/a (swarm init failed)"
        );
    }
    println!("gantry / raw docker run: {:.2}×", gm / dm);
    if args.services > 0 {
        let (created, steady) = many_services(&bin, args.services, args.instances).await?;
        println!(
            "{} services × 10 tasks on {} simulated instances: created in {created:.1} s, all steady after {steady:.1} s",
            args.services, args.instances
        );
    }
    Ok(())
}
