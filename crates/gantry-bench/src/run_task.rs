//! RunTask→RUNNING latency against raw Docker, in the same run.
//!
//! gantry: a `gantry server` and a `gantry agent` (real processes, the local Docker), a tiny
//! busybox task; the clock runs from sending RunTask until DescribeTasks first shows RUNNING
//! (polled every millisecond). Baselines: create + start of the same container through the
//! Engine API (bollard, as the agent does), and `docker create` + `docker start` with the CLI.
//!
//! `awsvpc`: the same clock for one task definition started three ways on one agent serving
//! both launch types: bridge mode (EC2), awsvpc with runc (EC2: a pause container holds the
//! task's namespace on its subnet's network) and awsvpc as FARGATE (runsc when the engine has it,
//! plus the task's cgroup).

use crate::{gantry_bin, percentile};
use gantry_agent::docker::DockerRuntime;
use gantry_agent::runtime::{ContainerRuntime, ContainerSpec};
use gantry_testkit::{
    docker, ensure_busybox_image, remove_labelled, temp_dir, AgentProcess, GantryProcess,
    BUSYBOX_IMAGE,
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

#[derive(clap::Args)]
pub struct AwsvpcArgs {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// Runs per measurement
    #[arg(long, default_value_t = 30)]
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

/// A server and one agent on the local Docker; returns them once the agent has registered (as a
/// container instance, or, with `--capacity fargate`, as Fargate capacity).
async fn start(
    bin: &std::path::Path,
    dir: &std::path::Path,
    extra: &[&str],
) -> anyhow::Result<(GantryProcess, AgentProcess)> {
    let server = GantryProcess::start_with(bin, &dir.join("server"), &[]).await;
    call(&server, "CreateCluster", json!({})).await?;
    let mut args = vec!["--pull-behavior", "prefer-cached", "--stop-timeout", "1s"];
    args.extend_from_slice(extra);
    let agent = AgentProcess::start(bin, &server, "default", &dir.join("agent"), &args);
    for _ in 0..300 {
        let v = call(&server, "ListContainerInstances", json!({})).await?;
        if v["containerInstanceArns"][0].is_string() {
            return Ok((server, agent));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("the agent did not register")
}

/// `runs` + 1 times: RunTask `body`, poll DescribeTasks until RUNNING, then stop the task outside
/// the clock. The first run is discarded.
async fn time_to_running(
    server: &GantryProcess,
    body: Value,
    runs: usize,
    tasks: &mut Vec<String>,
) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::new();
    for i in 0..=runs {
        let started = Instant::now();
        let v = call(server, "RunTask", body.clone()).await?;
        let Some(task) = v["tasks"][0]["taskArn"].as_str().map(String::from) else {
            anyhow::bail!("RunTask placed nothing: {v}");
        };
        loop {
            let d = call(server, "DescribeTasks", json!({"tasks": [task]})).await?;
            match d["tasks"][0]["lastStatus"].as_str() {
                Some("RUNNING") => break,
                Some("STOPPED") => anyhow::bail!("task stopped: {d}"),
                _ => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        if i > 0 {
            out.push(started.elapsed());
        }
        tasks.push(task.clone());
        // Keep the host steady: stop each task before the next run, outside the clock.
        call(server, "StopTask", json!({"task": task})).await?;
        loop {
            let d = call(server, "DescribeTasks", json!({"tasks": [task]})).await?;
            if d["tasks"][0]["lastStatus"] == "STOPPED" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(out)
}

/// Removes the containers of these tasks (pause containers included).
fn remove_containers(tasks: &[String]) {
    for task in tasks {
        remove_labelled("gantry.task", task);
    }
}

pub async fn awsvpc(args: AwsvpcArgs) -> anyhow::Result<()> {
    ensure_busybox_image();
    let bin = gantry_bin(args.gantry_bin)?;
    let dir = temp_dir("bench-awsvpc");
    let (server, _agent) = start(&bin, &dir, &["--capacity", "both"]).await?;
    let v = call(
        &server,
        "DescribeContainerInstances",
        json!({"containerInstances": [
        call(&server, "ListContainerInstances", json!({})).await?["containerInstanceArns"][0]]}),
    )
    .await?;
    let isolation = v["containerInstances"][0]["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["name"] == "gantry.fargate-isolation"))
        .and_then(|a| a["value"].as_str())
        .unwrap_or("unknown")
        .to_string();
    let register = |mode: &str| {
        json!({"family": format!("bench-{mode}"), "networkMode": mode, "cpu": "256", "memory": "512",
               "requiresCompatibilities": if mode == "awsvpc" { json!(["EC2", "FARGATE"]) } else { json!(["EC2"]) },
               "containerDefinitions": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"]}]})
    };
    let mut arns = Vec::new();
    for mode in ["bridge", "awsvpc"] {
        let v = call(&server, "RegisterTaskDefinition", register(mode)).await?;
        arns.push(
            v["taskDefinition"]["taskDefinitionArn"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let mut tasks = Vec::new();
    let subnet = format!("subnet-bench{}", std::process::id());
    let net = json!({"awsvpcConfiguration": {"subnets": [subnet]}});
    let bridge = time_to_running(
        &server,
        json!({"taskDefinition": arns[0], "launchType": "EC2"}),
        args.runs,
        &mut tasks,
    )
    .await?;
    let runc = time_to_running(
        &server,
        json!({"taskDefinition": arns[1], "launchType": "EC2", "networkConfiguration": net}),
        args.runs,
        &mut tasks,
    )
    .await?;
    let fargate = time_to_running(
        &server,
        json!({"taskDefinition": arns[1], "launchType": "FARGATE", "networkConfiguration": net}),
        args.runs,
        &mut tasks,
    )
    .await?;

    println!(
        "RunTask→RUNNING by network mode and isolation, busybox task (cpu 256, memory 512), {} runs each (first discarded)",
        args.runs
    );
    println!(
        "{:<36} {:>6} {:>9} {:>9}",
        "path", "runs", "p50 ms", "p99 ms"
    );
    let b = line("bridge (EC2, runc)", bridge);
    let r = line("awsvpc (EC2, runc)", runc);
    let f = line(&format!("awsvpc (FARGATE, {isolation})"), fargate);
    println!(
        "awsvpc overhead at p50: {:+.1} ms with runc, {:+.1} ms as FARGATE ({isolation}), over bridge",
        r - b,
        f - b
    );
    remove_containers(&tasks);
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", &format!("gantry-{subnet}")])
        .output();
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    ensure_busybox_image();
    let bin = gantry_bin(args.gantry_bin)?;
    let dir = temp_dir("bench-run-task");
    let (server, _agent) = start(&bin, &dir, &[]).await?;
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

    let rt = DockerRuntime::connect()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tasks = Vec::new();
    let gantry = time_to_running(
        &server,
        json!({"taskDefinition": td}),
        args.runs,
        &mut tasks,
    )
    .await?;

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

    remove_containers(&tasks);
    Ok(())
}
