//! Benchmarks, each against a baseline in the same run (never run by CI):
//!
//! - `gantry-bench api`: RegisterTaskDefinition and DescribeTaskDefinition over HTTP with
//!   SigV4-signed requests, against gantry and moto's server. Prints requests/s and p50/p99.
//! - `gantry-bench authz`: DescribeTaskDefinition as the root and as an IAM user with 10
//!   managed policies of 10 statements each, in one run against one server.
//! - `gantry-bench awsvpc`: RunTask→RUNNING of one task definition in bridge mode, in awsvpc
//!   mode with runc, and as a FARGATE task (awsvpc, runsc when the engine has it), in one run.
//! - `gantry-bench run-task`: RunTask→RUNNING latency of a tiny container, against raw
//!   `docker create` + `docker start` of the same image (through the Engine API and through the
//!   docker CLI). Prints p50/p99 and gantry's overhead.
//!
//! ```sh
//! cargo build --release -p gantry -p gantry-bench
//! python3 -m venv /tmp/moto && /tmp/moto/bin/pip install "moto[server]"
//! target/release/gantry-bench api --moto-bin /tmp/moto/bin/moto_server
//! target/release/gantry-bench run-task --runs 50
//! ```

use anyhow::{bail, Context};
use clap::Parser;
use gantry_testkit::{free_port, signed_headers, temp_dir, GantryProcess};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod authz;
mod lb;
mod logs;
mod placement;
mod run_task;
mod scale;
mod service;

#[derive(Parser)]
#[command(about = "Benchmarks of gantry, each side by side with a baseline in the same run.")]
enum Cli {
    /// ECS API throughput and latency, against moto_server
    Api(Args),
    /// DescribeTaskDefinition as the root and as a user with 10 policies x 10 statements
    Authz(authz::Args),
    /// Requests/s and p99 through gantry's application load balancer, against HAProxy
    Lb(lb::Args),
    /// (A target `lb` runs: answers every HTTP request with a fixed body)
    #[command(hide = true)]
    LbTarget(lb::TargetArgs),
    /// Log ingest through awslogs to gantry's log store, against Docker's json-file alone
    Logs(logs::Args),
    /// RunTask→RUNNING latency, against raw docker create + start
    RunTask(run_task::Args),
    /// RunTask→RUNNING in bridge mode, awsvpc with runc, and awsvpc as FARGATE (runsc)
    Awsvpc(run_task::AwsvpcArgs),
    /// Placements/s of the pure placement engine at 100, 1,000 and 10,000 instances
    Placement(placement::Args),
    /// RunTask tasks/s end to end at 1,000 simulated instances, against moto_server
    Scale(scale::Args),
    /// A 20-replica service from nothing, against docker run and Docker Swarm; 1,000 services
    Service(service::Args),
}

#[derive(clap::Args)]
struct Args {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// moto's server command; give "" to skip the baseline
    #[arg(long, default_value = "moto_server")]
    moto_bin: String,
    /// Seconds per measurement
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client connections
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

pub(crate) struct Target {
    name: &'static str,
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
}

struct Figures {
    requests: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn call(client: &reqwest::Client, t: &Target, op: &str, body: &[u8]) -> anyhow::Result<u16> {
    let host = t.endpoint.trim_start_matches("http://");
    let headers = signed_headers(
        host,
        &t.access_key_id,
        &t.secret_access_key,
        "us-east-1",
        op,
        body,
    );
    let mut req = client.post(format!("{}/", t.endpoint)).body(body.to_vec());
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        req = req.header(k, v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    resp.bytes().await?;
    Ok(status)
}

fn register_body(i: usize) -> Vec<u8> {
    format!(
        r#"{{"family":"bench","containerDefinitions":[{{"name":"web","image":"nginx","memory":128,"cpu":64,"portMappings":[{{"containerPort":80}}],"environment":[{{"name":"N","value":"{i}"}}]}}]}}"#
    )
    .into_bytes()
}

async fn measure(t: Arc<Target>, op: &'static str, seconds: u64, concurrency: usize) -> Figures {
    let counter = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (t, counter) = (t.clone(), counter.clone());
        set.spawn(async move {
            let client = reqwest::Client::new();
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let body = match op {
                    "RegisterTaskDefinition" => register_body(i),
                    _ => br#"{"taskDefinition":"bench:1"}"#.to_vec(),
                };
                let s = Instant::now();
                match call(&client, &t, op, &body).await {
                    Ok(200) => lat.push(s.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    while let Some(Ok((lat, e))) = set.join_next().await {
        all.extend(lat);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Figures {
        requests: all.len(),
        errors,
        seconds: secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

pub(crate) struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn start_moto(bin: &str) -> anyhow::Result<(Moto, String)> {
    let port = free_port();
    let child = Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {bin}"))?;
    let moto = Moto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{endpoint}/moto-api/")).await.is_ok() {
            return Ok((moto, endpoint));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("moto_server did not start on port {port}")
}

/// The gantry binary: the one given, or the one built next to this program.
fn gantry_bin(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(b) => Ok(b),
        None => Ok(std::env::current_exe()?.with_file_name("gantry")),
    }
}

/// p-th percentile (0..1) of sorted samples, in ms.
fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Api(args) => api(args).await,
        Cli::Authz(args) => authz::run(args).await,
        Cli::Lb(args) => lb::run(args).await,
        Cli::LbTarget(args) => lb::target(args).await,
        Cli::Logs(args) => logs::run(args).await,
        Cli::RunTask(args) => run_task::run(args).await,
        Cli::Awsvpc(args) => run_task::awsvpc(args).await,
        Cli::Placement(args) => placement::run(args),
        Cli::Scale(args) => scale::run(args).await,
        Cli::Service(args) => service::run(args).await,
    }
}

async fn api(args: Args) -> anyhow::Result<()> {
    let gantry_bin = gantry_bin(args.gantry_bin)?;
    let dir = temp_dir("bench");
    let gantry = GantryProcess::start(&gantry_bin, &dir).await;
    let mut targets = vec![Arc::new(Target {
        name: "gantry",
        endpoint: gantry.endpoint(),
        access_key_id: gantry.access_key_id.clone(),
        secret_access_key: gantry.secret_access_key.clone(),
    })];
    let _moto = if args.moto_bin.is_empty() {
        None
    } else {
        let (m, endpoint) = start_moto(&args.moto_bin).await?;
        targets.push(Arc::new(Target {
            name: "moto",
            endpoint,
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        }));
        Some(m)
    };
    println!(
        "{} s per cell, {} concurrent connections, signed requests over loopback HTTP/1.1",
        args.seconds, args.concurrency
    );
    println!(
        "{:<8} {:<24} {:>9} {:>10} {:>9} {:>9} {:>7}",
        "server", "operation", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for t in &targets {
        let client = reqwest::Client::new();
        let status = call(&client, t, "RegisterTaskDefinition", &register_body(0)).await?;
        if status != 200 {
            bail!(
                "{}: seeding RegisterTaskDefinition answered {status}",
                t.name
            );
        }
        for op in ["DescribeTaskDefinition", "RegisterTaskDefinition"] {
            let f = measure(t.clone(), op, args.seconds, args.concurrency).await;
            println!(
                "{:<8} {:<24} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                t.name,
                op,
                f.requests,
                f.requests as f64 / f.seconds,
                f.p50_ms,
                f.p99_ms,
                f.errors
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
