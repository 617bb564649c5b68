//! Log ingest: the same output through gantry's awslogs path and through Docker's json-file
//! driver alone, in one run.
//!
//! One busybox container prints `--lines` lines of `--line-bytes` bytes as fast as it can
//! (`yes | head`). json-file: from the container's start to its finish (dockerd has written
//! every line to the file by then). gantry: the same task with `awslogs`, from the container's
//! start until DescribeLogStreams shows every byte stored in logs.db (fsynced): container →
//! json-file → the agent reading the file → /agent/v1/logs → the log store.
//!
//! Then search: `--filter-events` access-log lines (one in 1,000 an `ERROR`) put into one
//! group through PutLogEvents, and every match of the pattern `ERROR` paged through with
//! FilterLogEvents, beside `grep -F ERROR` over the same lines in a file.

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
    /// Events to search with FilterLogEvents (0: no search)
    #[arg(long, default_value_t = 10_000_000)]
    filter_events: u64,
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
    // The file's size is watched (a stat, so the watching costs dockerd nothing); once it has
    // not grown for half a second and holds every line, the last growth is when it was done.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut size, mut grew_at) = (0u64, now());
    let written_at = loop {
        let s = std::fs::metadata(path.trim()).map(|m| m.len()).unwrap_or(0);
        if s != size {
            (size, grew_at) = (s, now());
        } else if s > 0 && now() - grew_at > 0.5 {
            let n = std::fs::read(path.trim())
                .map(|b| b.iter().filter(|c| **c == b'\n').count())
                .unwrap_or(0);
            if n as u64 >= args.lines {
                break grew_at;
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "json-file holds {size} bytes after 2 minutes"
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
    let want_bytes = args.lines as i64 * args.line_bytes as i64;
    // Live: shipped as the container writes.
    let (runtime_id, stored_at, _) = run_and_store(&server, want_bytes, None).await?;
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
    // Backlog: the server is stopped (SIGSTOP) while the container writes, then resumed once
    // it has exited; from then on, only the agent's reading and shipping and the store count.
    let (_, _, backlog) = run_and_store(&server, want_bytes, Some(args.line_bytes)).await?;
    if let Some((lines, secs)) = backlog {
        report(
            "gantry shipping a backlog alone",
            lines,
            args.line_bytes,
            secs,
        );
    }
    if args.filter_events > 0 {
        search(&server, &dir, args.filter_events).await?;
    }
    Ok(())
}

async fn stored_bytes(server: &GantryProcess) -> i64 {
    let (_, v) = server
        .call_logs("DescribeLogStreams", r#"{"logGroupName": "/bench/logs"}"#)
        .await;
    v["logStreams"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s: &Value| s["storedBytes"].as_i64().unwrap_or(0))
        .sum()
}

fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status();
}

/// Runs the bench task and waits until the group holds `want` more bytes; answers the
/// container's runtime id and when that was. With `backlog` (the line size), the server is
/// stopped from the container's start to its exit, and the answer also says how many lines
/// were shipped after it resumed, and in how long.
async fn run_and_store(
    server: &GantryProcess,
    want: i64,
    backlog: Option<usize>,
) -> anyhow::Result<(String, f64, Option<(u64, f64)>)> {
    let want = stored_bytes(server).await + want;
    let (s, v) = server
        .call("RunTask", r#"{"taskDefinition": "bench-logs"}"#)
        .await;
    anyhow::ensure!(s == 200, "RunTask: {v}");
    let arn = v["tasks"][0]["taskArn"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut runtime_id = String::new();
    let mut resumed: Option<(i64, f64)> = None;
    loop {
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
            if let (Some(_), false, Some(pid)) = (backlog, runtime_id.is_empty(), server.pid()) {
                let before = stored_bytes(server).await;
                signal(pid, "-STOP");
                let _ = std::process::Command::new("docker")
                    .args(["wait", &runtime_id])
                    .output();
                signal(pid, "-CONT");
                resumed = Some((before, now()));
            }
        }
        if stored_bytes(server).await >= want {
            let at = now();
            let shipped = match (backlog, resumed) {
                (Some(line), Some((before, from))) => {
                    Some((((want - before) / line as i64) as u64, at - from))
                }
                _ => None,
            };
            return Ok((runtime_id, at, shipped));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `i`th line of the search's group: an access log, one line in 1,000 an error.
fn access_line(i: u64) -> String {
    let (level, status) = if i % 1000 == 999 {
        ("ERROR", 500)
    } else {
        ("INFO", 200)
    };
    format!(
        "{level} 10.0.{}.{} GET /api/items/{} status={status} bytes={} latency_ms={} request_id={i:016x}",
        i % 250,
        (i / 250) % 250,
        i % 9973,
        200 + i % 1800,
        i % 97
    )
}

/// Puts `n` events into one group, then pages through every match of `ERROR`.
async fn search(server: &GantryProcess, dir: &std::path::Path, n: u64) -> anyhow::Result<()> {
    let group = "/bench/search";
    let (s, v) = server
        .call_logs(
            "CreateLogGroup",
            &json!({"logGroupName": group}).to_string(),
        )
        .await;
    anyhow::ensure!(s == 200, "CreateLogGroup: {v}");
    let (s, v) = server
        .call_logs(
            "CreateLogStream",
            &json!({"logGroupName": group, "logStreamName": "app"}).to_string(),
        )
        .await;
    anyhow::ensure!(s == 200, "CreateLogStream: {v}");
    // One millisecond apart, ending now: within CloudWatch's 14 days and 2 hours.
    let first = (now() * 1000.0) as i64 - n as i64;
    let text = dir.join("search.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&text)?);
    let began = Instant::now();
    let mut i = 0u64;
    while i < n {
        let (mut events, mut bytes) = (Vec::new(), 0usize);
        while i < n && events.len() < 10_000 {
            let line = access_line(i);
            if bytes + line.len() + 26 > 1_048_576 {
                break;
            }
            bytes += line.len() + 26;
            std::io::Write::write_all(&mut file, line.as_bytes())?;
            std::io::Write::write_all(&mut file, b"\n")?;
            events.push(json!({"timestamp": first + i as i64, "message": line}));
            i += 1;
        }
        let body = json!({"logGroupName": group, "logStreamName": "app", "logEvents": events});
        let (s, v) = server.call_logs("PutLogEvents", &body.to_string()).await;
        anyhow::ensure!(s == 200, "PutLogEvents: {v}");
        if i % 1_000_000 < 10_000 {
            eprintln!("  {i} events put");
        }
    }
    std::io::Write::flush(&mut file)?;
    drop(file);
    let put = began.elapsed().as_secs_f64();
    println!("put {n} events through PutLogEvents in {put:.1} s");

    println!(
        "{:<34} {:>9} {:>8} {:>8}",
        "search (all pages)", "matches", "pages", "seconds"
    );
    let began = Instant::now();
    let out = std::process::Command::new("grep")
        .args(["-c", "-F", "ERROR"])
        .arg(&text)
        .output()?;
    let grep_secs = began.elapsed().as_secs_f64();
    let grep_matches: u64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    println!(
        "{:<34} {grep_matches:>9} {:>8} {grep_secs:>8.3}",
        "grep -F over a file", "-"
    );
    // The pattern a search finds by its literal, and one with none to search for.
    for (pattern, label) in [
        ("ERROR", "gantry FilterLogEvents ERROR"),
        ("?ERROR ?FATAL", "  ?ERROR ?FATAL (no literal)"),
    ] {
        let began = Instant::now();
        let (mut matches, mut pages, mut token): (u64, u64, Option<String>) = (0, 0, None);
        loop {
            let mut req = json!({"logGroupName": group, "filterPattern": pattern});
            if let Some(t) = &token {
                req["nextToken"] = json!(t);
            }
            let (s, v) = server.call_logs("FilterLogEvents", &req.to_string()).await;
            anyhow::ensure!(s == 200, "FilterLogEvents: {v}");
            pages += 1;
            matches += v["events"].as_array().map_or(0, |e| e.len() as u64);
            match v["nextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        let secs = began.elapsed().as_secs_f64();
        println!("{label:<34} {matches:>9} {pages:>8} {secs:>8.3}");
        anyhow::ensure!(
            matches == grep_matches,
            "FilterLogEvents found {matches} matches of {pattern:?}, grep {grep_matches}"
        );
    }
    Ok(())
}
