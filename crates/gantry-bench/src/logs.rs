//! Log ingest: the same output through gantry's awslogs path and through Docker's json-file
//! driver alone, in one run.
//!
//! One busybox container prints `--lines` lines of `--line-bytes` bytes as fast as it can
//! (`yes | head`). json-file: from the container's start to its finish (dockerd has written
//! every line to the file by then). gantry: the same task with `awslogs`, from the container's
//! start until DescribeLogStreams shows every byte stored in logs.db (fsynced): container →
//! json-file → the agent reading the file → /agent/v1/logs → the log store.

use crate::gantry_bin;
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
    /// Lines the container prints
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Bytes a line (without its newline)
    #[arg(long, default_value_t = 100)]
    line_bytes: usize,
}

fn script(lines: u64, bytes: usize) -> String {
    format!("yes {} | head -n {lines}", "x".repeat(bytes))
}

/// Seconds between a container's start and its finish, from `docker inspect`.
fn run_times(id: &str) -> (f64, f64) {
    let out = docker(&[
        "inspect",
        "-f",
        "{{.State.StartedAt}} {{.State.FinishedAt}}",
        id,
    ]);
    let mut it = out
        .split_whitespace()
        .map(|t| gantry_agent::runtime::parse_rfc3339_ns(t).unwrap_or_default() as f64 / 1e9);
    (it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn report(name: &str, lines: u64, bytes: usize, secs: f64) -> f64 {
    let rate = lines as f64 / secs;
    println!(
        "{name:<34} {lines:>9} {secs:>8.2} {rate:>12.0} {:>10.1}",
        rate * (bytes + 1) as f64 / 1e6
    );
    rate
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = gantry_bin(args.gantry_bin)?;
    ensure_busybox_image();
    let cmd = script(args.lines, args.line_bytes);
    println!(
        "{:<34} {:>9} {:>8} {:>12} {:>10}",
        "path", "lines", "seconds", "lines/s", "MB/s"
    );

    // Docker's json-file alone: from the container's start until the file holds every line
    // (dockerd copies output to the file after the process has written it).
    let name = format!("gantry-bench-logs-{}", std::process::id());
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=1t",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        &cmd,
    ]);
    let path = docker(&["inspect", "-f", "{{.LogPath}}", &name]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let written_at = loop {
        let n = std::fs::read(path.trim())
            .map(|b| b.iter().filter(|c| **c == b'\n').count())
            .unwrap_or(0);
        if n as u64 >= args.lines {
            break now();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "json-file holds {n} lines after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (start, _) = run_times(&name);
    docker(&["rm", "-f", &name]);
    let base = report(
        "docker json-file",
        args.lines,
        args.line_bytes,
        written_at - start,
    );

    // gantry's awslogs.
    let dir = temp_dir("bench-logs");
    let server = GantryProcess::start_with(&bin, &dir.join("server"), &[]).await;
    let (s, _) = server.call("CreateCluster", "{}").await;
    anyhow::ensure!(s == 200, "CreateCluster: {s}");
    let _agent = AgentProcess::start(
        &bin,
        &server,
        "default",
        &dir.join("agent"),
        &["--pull-behavior", "prefer-cached", "--task-endpoint", "off"],
    );
    let td = json!({"family": "bench-logs", "containerDefinitions": [{
        "name": "app", "image": BUSYBOX_IMAGE, "memory": 64, "command": ["sh", "-c", cmd],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/bench/logs", "awslogs-stream-prefix": "bench", "awslogs-create-group": "true"}}}]});
    let (s, v) = server.call("RegisterTaskDefinition", &td.to_string()).await;
    anyhow::ensure!(s == 200, "RegisterTaskDefinition: {v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = server.call("ListContainerInstances", "{}").await;
        if v["containerInstanceArns"][0].is_string() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the agent did not register");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, v) = server
        .call("RunTask", r#"{"taskDefinition": "bench-logs"}"#)
        .await;
    anyhow::ensure!(s == 200, "RunTask: {v}");
    let arn = v["tasks"][0]["taskArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want_bytes = args.lines as i64 * args.line_bytes as i64;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut runtime_id = String::new();
    let stored_at = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the lines were not all stored within 10 minutes"
        );
        if runtime_id.is_empty() {
            let (_, t) = server
                .call("DescribeTasks", &json!({"tasks": [arn]}).to_string())
                .await;
            runtime_id = t["tasks"][0]["containers"][0]["runtimeId"]
                .as_str()
                .unwrap_or_default()
                .to_string();
        }
        let (_, v) = server
            .call_logs("DescribeLogStreams", r#"{"logGroupName": "/bench/logs"}"#)
            .await;
        let stored: i64 = v["logStreams"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s: &Value| s["storedBytes"].as_i64().unwrap_or(0))
            .sum();
        if stored >= want_bytes {
            break now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (start, finish) = run_times(&runtime_id);
    let rate = report(
        "gantry awslogs (to logs.db)",
        args.lines,
        args.line_bytes,
        stored_at - start,
    );
    report(
        "  (the container itself ran)",
        args.lines,
        args.line_bytes,
        finish - start,
    );
    println!("gantry / json-file: {:.2}x", rate / base);
    Ok(())
}
