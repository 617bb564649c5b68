//! How tasks reach the endpoint at `169.254.170.2:80`: the address is put on the host's
//! loopback interface, the agent listens on it at its own port (51679, which the agent
//! reserves), and one DNAT rule in each of the `nat` table's PREROUTING (bridge and awsvpc
//! tasks, whose packets arrive from their bridges) and OUTPUT (host-mode tasks, the host's own
//! processes) chains sends port 80 there.
//!
//! Why this and not ECS's DNAT to 127.0.0.1:51679: DNAT to a loopback address from a bridge
//! needs `route_localnet=1`, which opens every loopback service of the host to the containers.
//! A link-local address of the host's own needs nothing of the kind, and the source address of
//! a task's connection reaches the agent unchanged (its task is found by it). The rules go
//! first in their chains, ahead of Docker's: a task publishing host port 80 does not capture
//! the endpoint's traffic, and nothing binds port 80 on the host (Docker's own proxy can).
//! They are checked for and added only when missing, and stay when the agent stops, as ECS's.

use crate::firewall::{iptables, must};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;

/// Puts `addr` on `lo` (when it is not there yet) and sends TCP to `addr:80` to `listen`.
pub fn install(addr: Ipv4Addr, listen: SocketAddrV4) -> Result<(), String> {
    ensure_on_lo(addr)?;
    nat_to(addr, listen)
}

/// Puts `addr` on the host's loopback interface when it is not there yet: a link-local address
/// of the host that every bridge's containers reach through their gateway (the task endpoint,
/// gantry's DNS server).
pub fn ensure_on_lo(addr: Ipv4Addr) -> Result<(), String> {
    let shown = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", "lo"])
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    let has = String::from_utf8_lossy(&shown.stdout).contains(&format!("inet {addr}/"));
    if !has {
        let out = Command::new("ip")
            .args(["addr", "add", &format!("{addr}/32"), "dev", "lo"])
            .output()
            .map_err(|e| format!("running ip: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ip addr add {addr}/32 dev lo: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

/// DNATs TCP to `addr:80` to `listen`, first in PREROUTING and OUTPUT.
fn nat_to(addr: Ipv4Addr, listen: SocketAddrV4) -> Result<(), String> {
    let dest = addr.to_string();
    let to = listen.to_string();
    for chain in ["PREROUTING", "OUTPUT"] {
        let rule = [
            "-d",
            &dest,
            "-p",
            "tcp",
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            &to,
        ];
        let mut check = vec!["-t", "nat", "-C", chain];
        check.extend(rule);
        if !iptables(&check)? {
            let mut insert = vec!["-t", "nat", "-I", chain, "1"];
            insert.extend(rule);
            must(&insert)?;
        }
    }
    Ok(())
}
