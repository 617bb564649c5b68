//! Load balancing: requests/s and latency through gantry's application load balancer and
//! through HAProxy (Debian's `haproxy`), each in front of the same three busybox httpd
//! containers, driven by wrk at the same connections in one run.

use crate::gantry_bin;
use gantry_testkit::{
    docker, ensure_busybox_image, free_port, temp_dir, GantryProcess, BUSYBOX_IMAGE,
};
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
    ensure_busybox_image();
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
    // Three targets, each serving a small page.
    let mut targets = Vec::new();
    for i in 0..3 {
        let id = docker(&[
            "run",
            "-d",
            "--rm",
            "-p",
            "127.0.0.1::80",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            &format!(
                "mkdir -p /www && echo target-{i} > /www/index.html && exec httpd -f -p 80 -h /www"
            ),
        ]);
        let port = docker(&["port", id.trim(), "80/tcp"]);
        let port: u16 = port
            .lines()
            .next()
            .and_then(|l| l.rsplit(':').next())
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no port for target {i}: {port}"))?;
        targets.push((id.trim().to_string(), port));
    }
    let result = compare(&bin, &targets, &args).await;
    for (id, _) in &targets {
        docker(&["rm", "-f", id]);
    }
    result
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
        "global\n  maxconn 10000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n  option forwardfor\n  http-reuse always\nfrontend web\n  bind 127.0.0.1:{hport}\n  default_backend targets\nbackend targets\n  balance roundrobin\n"
    );
    for (i, (_, p)) in targets.iter().enumerate() {
        cfg.push_str(&format!("  server t{i} 127.0.0.1:{p}\n"));
    }
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg)?;
    let mut haproxy = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg_path)
        .spawn()?;

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
    let _ = haproxy.kill();
    let _ = haproxy.wait();
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
