//! Load balancing: requests/s and latency through gantry's application load balancer and
//! through HAProxy (Debian's `haproxy`), each in front of the same three targets, driven by wrk
//! at the same connections in one run. The targets are this program's `lb-target`: a minimal
//! HTTP/1.1 keep-alive responder on loopback, so that the proxies, not the targets, are what is
//! measured (busybox httpd, one process a connection and no keep-alive, held both proxies
//! to about 1,100 requests/s).

use crate::gantry_bin;
use gantry_testkit::{free_port, temp_dir, GantryProcess};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// wrk's connections
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Seconds each side is driven
    #[arg(long, default_value_t = 10)]
    seconds: u32,
}

const ELB: &str = "2015-12-01";

/// The text of the first `<tag>` in an XML answer.
fn xml_value(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    Some(body[start..end].to_string())
}

async fn elb(
    server: &GantryProcess,
    action: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<String> {
    let (s, body) = server
        .call_query("elasticloadbalancing", ELB, action, params)
        .await;
    anyhow::ensure!(s == 200, "{action}: {s} {body}");
    Ok(body)
}

/// wrk's requests/s and latency percentiles (ms) for `url`.
fn drive(url: &str, connections: u32, seconds: u32) -> anyhow::Result<(f64, f64, f64)> {
    let out = Command::new("wrk")
        .args([
            "-t",
            "2",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .map_err(|e| anyhow::anyhow!("running wrk ({e}): apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !text.contains("Non-2xx"),
        "wrk saw failed requests:\n{text}"
    );
    let ms = |v: &str| -> f64 {
        let v = v.trim();
        let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = n.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            _ => n,
        }
    };
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    let rps: f64 = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let p50 = field("50%").map(|v| ms(&v)).unwrap_or(f64::NAN);
    let p99 = field("99%").map(|v| ms(&v)).unwrap_or(f64::NAN);
    Ok((rps, p50, p99))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = gantry_bin(args.gantry_bin.clone())?;
    for tool in ["wrk", "haproxy"] {
        anyhow::ensure!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()?
                .status
                .success(),
            "{tool} is missing: apt-get install {tool}"
        );
    }
    // Three targets, each answering a small page.
    let me = std::env::current_exe()?;
    let mut targets = Vec::new();
    let mut children = Vec::new();
    for i in 0..3 {
        let port = free_port();
        children.push(Reaped(
            Command::new(&me)
                .args([
                    "lb-target",
                    "--port",
                    &port.to_string(),
                    "--body",
                    &format!("target-{i}"),
                ])
                .spawn()?,
        ));
        targets.push((format!("target-{i}"), port));
    }
    for (_, port) in &targets {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", *port))
            .await
            .is_err()
        {
            anyhow::ensure!(
                Instant::now() < deadline,
                "a target did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let result = compare(&bin, &targets, &args).await;
    drop(children);
    result
}

#[derive(clap::Args)]
pub struct TargetArgs {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    body: String,
}

/// A target for the benchmark: answers every HTTP/1.1 request on a connection with `body`.
pub async fn target(args: TargetArgs) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{}",
        args.body.len(),
        args.body
    );
    let answer: &'static [u8] = Box::leak(answer.into_bytes().into_boxed_slice());
    loop {
        let (mut c, _) = socket.accept().await?;
        let _ = c.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut have = 0usize;
            loop {
                let Ok(n) = c.read(&mut buf[have..]).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                have += n;
                // Every complete request head (GETs: no body) gets the answer.
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    if c.write_all(answer).await.is_err() {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                }
                if have == buf.len() {
                    return;
                }
            }
        });
    }
}

/// A child process killed when dropped, whichever way the bench leaves.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn compare(
    bin: &std::path::Path,
    targets: &[(String, u16)],
    args: &Args,
) -> anyhow::Result<()> {
    let dir = temp_dir("bench-lb");
    // HAProxy: round robin, keep-alive to the targets, X-Forwarded-For, as gantry's proxy does.
    let hport = free_port();
    let mut cfg = format!(
        "global\n  maxconn 4000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option forwardfor\n  http-reuse always\nfrontend web\n  bind 127.0.0.1:{hport}\n  default_backend targets\nbackend targets\n  balance roundrobin\n"
    );
    for (i, (_, p)) in targets.iter().enumerate() {
        cfg.push_str(&format!("  server t{i} 127.0.0.1:{p}\n"));
    }
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg)?;
    let haproxy = Reaped(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg_path)
            .spawn()?,
    );

    let server =
        GantryProcess::start_with(bin, &dir.join("server"), &["--elb-second", "100ms"]).await;
    let lb = elb(
        &server,
        "CreateLoadBalancer",
        &[("Name", "bench"), ("Subnets.member.1", "subnet-gantry")],
    )
    .await?;
    let lb_arn = xml_value(&lb, "LoadBalancerArn").unwrap_or_default();
    let tg = elb(
        &server,
        "CreateTargetGroup",
        &[
            ("Name", "bench"),
            ("Protocol", "HTTP"),
            ("Port", "80"),
            ("TargetType", "ip"),
            ("HealthCheckIntervalSeconds", "5"),
            ("HealthCheckTimeoutSeconds", "2"),
            ("HealthyThresholdCount", "2"),
        ],
    )
    .await?;
    let tg_arn = xml_value(&tg, "TargetGroupArn").unwrap_or_default();
    let gport = free_port().to_string();
    elb(
        &server,
        "CreateListener",
        &[
            ("LoadBalancerArn", &lb_arn),
            ("Protocol", "HTTP"),
            ("Port", &gport),
            ("DefaultActions.member.1.Type", "forward"),
            ("DefaultActions.member.1.TargetGroupArn", &tg_arn),
        ],
    )
    .await?;
    let ports: Vec<String> = targets.iter().map(|t| t.1.to_string()).collect();
    let mut params = vec![("TargetGroupArn", tg_arn.as_str())];
    let keys: Vec<(String, String)> = (1..=ports.len())
        .map(|n| {
            (
                format!("Targets.member.{n}.Id"),
                format!("Targets.member.{n}.Port"),
            )
        })
        .collect();
    for (n, (id_key, port_key)) in keys.iter().enumerate() {
        params.push((id_key, "127.0.0.1"));
        params.push((port_key, &ports[n]));
    }
    elb(&server, "RegisterTargets", &params).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = elb(
            &server,
            "DescribeTargetHealth",
            &[("TargetGroupArn", &tg_arn)],
        )
        .await?;
        if h.matches("<State>healthy</State>").count() == targets.len() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the targets did not become healthy: {h}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    println!(
        "{:<24} {:>12} {:>10} {:>10}",
        "proxy (3 targets)", "requests/s", "p50 ms", "p99 ms"
    );
    let h = drive(
        &format!("http://127.0.0.1:{hport}/"),
        args.connections,
        args.seconds,
    );
    let g = drive(
        &format!("http://127.0.0.1:{gport}/"),
        args.connections,
        args.seconds,
    );
    drop(haproxy);
    let (hr, h50, h99) = h?;
    let (gr, g50, g99) = g?;
    println!("{:<24} {hr:>12.0} {h50:>10.2} {h99:>10.2}", "haproxy");
    println!("{:<24} {gr:>12.0} {g50:>10.2} {g99:>10.2}", "gantry ALB");
    println!(
        "gantry / haproxy: {:.2}x requests/s, p99 {:.2}x",
        gr / hr,
        g99 / h99
    );
    Ok(())
}
