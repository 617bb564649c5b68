//! RunTask→RUNNING latency against raw Docker, in the same run.
//!
//! gantry: a `gantry server` and a `gantry agent` (real processes, the local Docker), a tiny
//! busybox task; the clock runs from sending RunTask until DescribeTasks first shows RUNNING
//! (polled every millisecond). Baselines: create + start of the same container through the
//! Engine API (bollard, as the agent does), and `docker create` + `docker start` with the CLI.

use crate::{gantry_bin, percentile};
use gantry_agent::docker::DockerRuntime;
use gantry_agent::runtime::{ContainerRuntime, ContainerSpec};
use gantry_testkit::{
    docker, ensure_busybox_image, temp_dir, AgentProcess, GantryProcess, BUSYBOX_IMAGE,
};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// Runs per measurement
    #[arg(long, default_value_t = 50)]
    runs: usize,
}

async fn call(g: &GantryProcess, op: &str, body: Value) -> anyhow::Result<Value> {
    let (status, v) = g.call(op, &body.to_string()).await;
    anyhow::ensure!(status == 200, "{op}: {v}");
    Ok(v)
}

fn line(name: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "{name:<36} {:>6} {:>9.1} {:>9.1}",
        samples.len(),
        p50,
        percentile(&samples, 0.99)
    );
    p50
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure_busybox_image();
    let bin = gantry_bin(args.gantry_bin)?;
    let dir = temp_dir("bench-run-task");
    let server = GantryProcess::start_with(&bin, &dir.join("server"), &[]).await;
    call(&server, "CreateCluster", json!({})).await?;
    let _agent = AgentProcess::start(
        &bin,
        &server,
        "default",
        &dir.join("agent"),
        &["--pull-behavior", "prefer-cached", "--stop-timeout", "1s"],
    );
    let mut instance = None;
    for _ in 0..300 {
        let v = call(&server, "ListContainerInstances", json!({})).await?;
        if let Some(a) = v["containerInstanceArns"][0].as_str() {
            instance = Some(a.to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let instance = instance.ok_or_else(|| anyhow::anyhow!("the agent did not register"))?;
    let td = call(
        &server,
        "RegisterTaskDefinition",
        json!({"family": "bench", "containerDefinitions": [{"name": "main", "image": BUSYBOX_IMAGE, "memory": 16, "command": ["sleep", "3600"]}]}),
    )
    .await?;
    let td = td["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Warm up both paths once.
    let rt = DockerRuntime::connect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut gantry = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..=args.runs {
        let started = Instant::now();
        let v = call(&server, "RunTask", json!({"taskDefinition": td})).await?;
        let task = v["tasks"][0]["taskArn"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        loop {
            let d = call(&server, "DescribeTasks", json!({"tasks": [task]})).await?;
            match d["tasks"][0]["lastStatus"].as_str() {
                Some("RUNNING") => break,
                Some("STOPPED") => anyhow::bail!("task stopped: {d}"),
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        if i > 0 {
            gantry.push(started.elapsed());
        }
        tasks.push(task);
        // Keep the host steady: stop each task before the next run, outside the clock.
        call(&server, "StopTask", json!({"task": tasks[tasks.len() - 1]})).await?;
    }

    let mut api = Vec::new();
    let mut cli = Vec::new();
    for i in 0..=args.runs {
        let spec = ContainerSpec {
            name: format!("gantry-bench-raw-{}-{i}", std::process::id()),
            image: BUSYBOX_IMAGE.into(),
            command: Some(vec!["sleep".into(), "3600".into()]),
            memory_mib: Some(16),
            cpu_shares: 2,
            network_mode: "bridge".into(),
            ..ContainerSpec::default()
        };
        let started = Instant::now();
        let id = rt.create(&spec).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        rt.start(&id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        if i > 0 {
            api.push(started.elapsed());
        }
        rt.remove(&id).await.map_err(|e| anyhow::anyhow!("{e}"))?;

        let name = format!("gantry-bench-cli-{}-{i}", std::process::id());
        let started = Instant::now();
        docker(&[
            "create",
            "--name",
            &name,
            "-m",
            "16m",
            BUSYBOX_IMAGE,
            "sleep",
            "3600",
        ]);
        docker(&["start", &name]);
        if i > 0 {
            cli.push(started.elapsed());
        }
        docker(&["rm", "-f", &name]);
    }

    println!(
        "RunTask→RUNNING vs raw Docker, tiny busybox container, {} runs each (first run discarded)",
        args.runs
    );
    println!(
        "{:<36} {:>6} {:>9} {:>9}",
        "path", "runs", "p50 ms", "p99 ms"
    );
    let g = line("gantry RunTask→RUNNING", gantry);
    let a = line("Engine API create+start (bollard)", api);
    let c = line("docker create + docker start (CLI)", cli);
    println!(
        "gantry overhead at p50: {:+.1} ms over the Engine API, {:+.1} ms over the CLI",
        g - a,
        g - c
    );

    let ids = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=gantry.container-instance={instance}"),
    ]);
    for id in ids.split_whitespace() {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", id])
            .output();
    }
    Ok(())
}
