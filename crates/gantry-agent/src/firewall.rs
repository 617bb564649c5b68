//! Security groups on the host, with iptables (the same `iptables` Docker uses).
//!
//! Traffic forwarded between containers passes Docker's `DOCKER-USER` chain first. gantry puts
//! there, once, an ACCEPT for traffic within its subnet pool (so that subnets route to each
//! other, as in a VPC, past Docker's isolation between bridges), and in front of it one jump per
//! firewalled task: `-d <task ip> -j GANTRY-<task>`. The task's chain accepts what its groups
//! admit and replies to its own connections, and drops the rest. The host itself (not a
//! forwarded path) always reaches its tasks.

use gantry_api::agent::Firewall;
use std::process::Command;

const POOL: &str = "10.213.0.0/16";

fn iptables(args: &[&str]) -> Result<bool, String> {
    let out = Command::new("iptables")
        .args(["-w"])
        .args(args)
        .output()
        .map_err(|e| format!("running iptables: {e}"))?;
    Ok(out.status.success())
}

fn must(args: &[&str]) -> Result<(), String> {
    let out = Command::new("iptables")
        .args(["-w"])
        .args(args)
        .output()
        .map_err(|e| format!("running iptables: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The chain of a task (iptables chain names are at most 28 characters).
pub fn chain(task_id: &str) -> String {
    format!("GANTRY-{}", &task_id[..task_id.len().min(20)])
}

/// Installs (or with `None`, removes) the rules of one task.
pub fn apply(task_id: &str, ip: &str, fw: Option<&Firewall>) -> Result<(), String> {
    let chain = chain(task_id);
    let dest = format!("{ip}/32");
    // Routing between subnets, once.
    if !iptables(&["-C", "DOCKER-USER", "-s", POOL, "-d", POOL, "-j", "ACCEPT"])? {
        must(&[
            "-I",
            "DOCKER-USER",
            "1",
            "-s",
            POOL,
            "-d",
            POOL,
            "-j",
            "ACCEPT",
        ])?;
    }
    let Some(fw) = fw else {
        while iptables(&["-D", "DOCKER-USER", "-d", &dest, "-j", &chain])? {}
        let _ = iptables(&["-F", &chain]);
        let _ = iptables(&["-X", &chain]);
        return Ok(());
    };
    if !iptables(&["-N", &chain])? {
        must(&["-F", &chain])?;
    }
    must(&[
        "-A",
        &chain,
        "-m",
        "conntrack",
        "--ctstate",
        "ESTABLISHED,RELATED",
        "-j",
        "ACCEPT",
    ])?;
    for a in &fw.allow {
        let ports = format!("{}:{}", a.from_port, a.to_port);
        match a.protocol.as_str() {
            "tcp" | "udp" => must(&[
                "-A",
                &chain,
                "-s",
                &a.source,
                "-p",
                &a.protocol,
                "--dport",
                &ports,
                "-j",
                "ACCEPT",
            ])?,
            _ => must(&["-A", &chain, "-s", &a.source, "-j", "ACCEPT"])?,
        }
    }
    must(&["-A", &chain, "-j", "DROP"])?;
    if !iptables(&["-C", "DOCKER-USER", "-d", &dest, "-j", &chain])? {
        must(&["-I", "DOCKER-USER", "1", "-d", &dest, "-j", &chain])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn chain_names_fit() {
        assert_eq!(
            super::chain("0123456789abcdef0123456789abcdef"),
            "GANTRY-0123456789abcdef0123"
        );
        assert!(super::chain("0123456789abcdef0123456789abcdef").len() <= 28);
    }
}
