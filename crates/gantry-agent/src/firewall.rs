//! Security groups on the host, with iptables (the same `iptables` Docker uses).
//!
//! Traffic forwarded between containers passes Docker's `DOCKER-USER` chain first. gantry puts
//! there, once, an ACCEPT for traffic within its subnet pool (so that subnets route to each
//! other, as in a VPC, past Docker's isolation between bridges), and in front of it one jump per
//! firewalled task: `-d <task ip> -j GANTRY-<task>`. The task's chain accepts what its groups
//! admit and replies to its own connections, and drops the rest. The host itself (not a
//! forwarded path) always reaches its tasks.
//!
//! A task's chain, which gantry owns, is written with `iptables-restore --noflush` in one
//! commit (declared, flushed and refilled together), so that its rules never disappear between
//! a flush and the refill. `DOCKER-USER` is Docker's, shared with whatever else the host runs:
//! gantry only checks for and inserts (or deletes) its own rules there, one by one.

use gantry_api::agent::Firewall;
use std::io::Write;
use std::process::{Command, Stdio};

/// The awsvpc pool of servers that do not say theirs.
const DEFAULT_POOL: &str = "10.213.0.0/16";

pub(crate) fn iptables(args: &[&str]) -> Result<bool, String> {
    let out = Command::new("iptables")
        .args(["-w"])
        .args(args)
        .output()
        .map_err(|e| format!("running iptables: {e}"))?;
    Ok(out.status.success())
}

pub(crate) fn must(args: &[&str]) -> Result<(), String> {
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

/// Feeds `input` to `iptables-restore --noflush`: all of it is committed, or none.
fn restore(input: &str) -> Result<(), String> {
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running iptables-restore: {e}"))?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(input.as_bytes()),
        None => Ok(()),
    };
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running iptables-restore: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "iptables-restore: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    written.map_err(|e| format!("writing to iptables-restore: {e}"))
}

/// The chain of a task (iptables chain names are at most 28 characters).
pub fn chain(task_id: &str) -> String {
    let short: String = task_id.chars().take(20).collect();
    format!("GANTRY-{short}")
}

/// Whether `s` can stand in an iptables-restore line as one word: nothing that could end the
/// word or the line, or quote.
fn plain(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(allowed)
}

/// The `iptables-restore --noflush` input for a task's chain: with `Some`, the chain declared
/// (made when missing), flushed and filled with the rules; with `None`, flushed and deleted.
/// Only the task's own chain appears. An error for a task id or a source that cannot be one
/// word of the input.
pub fn restore_input(task_id: &str, fw: Option<&Firewall>) -> Result<String, String> {
    let chain = chain(task_id);
    if !plain(&chain, |c| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    }) {
        return Err(format!("unusable task id for a chain name: {task_id:?}"));
    }
    let mut out = format!("*filter\n:{chain} - [0:0]\n-F {chain}\n");
    match fw {
        None => out.push_str(&format!("-X {chain}\n")),
        Some(fw) => {
            out.push_str(&format!(
                "-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n"
            ));
            for a in &fw.allow {
                // A CIDR or an address: digits, hex, dots, colons and one slash at most.
                if !plain(&a.source, |c| c.is_ascii_hexdigit() || ".:/".contains(c)) {
                    return Err(format!("unusable source in a rule: {:?}", a.source));
                }
                match a.protocol.as_str() {
                    "tcp" | "udp" => out.push_str(&format!(
                        "-A {chain} -s {} -p {} --dport {}:{} -j ACCEPT\n",
                        a.source, a.protocol, a.from_port, a.to_port
                    )),
                    _ => out.push_str(&format!("-A {chain} -s {} -j ACCEPT\n", a.source)),
                }
            }
            out.push_str(&format!("-A {chain} -j DROP\n"));
        }
    }
    out.push_str("COMMIT\n");
    Ok(out)
}

/// Installs (or with `None`, removes) the rules of one task.
pub fn apply(task_id: &str, ip: &str, fw: Option<&Firewall>) -> Result<(), String> {
    let chain = chain(task_id);
    let dest = format!("{ip}/32");
    let input = restore_input(task_id, fw)?;
    let pool = fw
        .map(|f| f.pool.as_str())
        .filter(|p| !p.is_empty())
        .unwrap_or(DEFAULT_POOL);
    if !plain(pool, |c| c.is_ascii_digit() || "./".contains(c)) {
        return Err(format!("unusable awsvpc pool: {pool:?}"));
    }
    let pool = pool.to_string();
    let pool = pool.as_str();
    // Routing between subnets, once.
    if !iptables(&["-C", "DOCKER-USER", "-s", pool, "-d", pool, "-j", "ACCEPT"])? {
        must(&[
            "-I",
            "DOCKER-USER",
            "1",
            "-s",
            pool,
            "-d",
            pool,
            "-j",
            "ACCEPT",
        ])?;
    }
    if fw.is_none() {
        // Unhook the chain first: it cannot be deleted while a jump refers to it.
        while iptables(&["-D", "DOCKER-USER", "-d", &dest, "-j", &chain])? {}
        return restore(&input);
    }
    // The chain complete first, then the jump to it.
    restore(&input)?;
    if !iptables(&["-C", "DOCKER-USER", "-d", &dest, "-j", &chain])? {
        must(&["-I", "DOCKER-USER", "1", "-d", &dest, "-j", &chain])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::agent::Allow;

    #[test]
    fn chain_names_fit() {
        assert_eq!(
            super::chain("0123456789abcdef0123456789abcdef"),
            "GANTRY-0123456789abcdef0123"
        );
        assert!(super::chain("0123456789abcdef0123456789abcdef").len() <= 28);
        // Not ASCII: cut at a character, not a byte.
        assert_eq!(
            super::chain("ééééééééééééééééééééé"),
            "GANTRY-éééééééééééééééééééé"
        );
    }

    fn allow(protocol: &str, from: u16, to: u16, source: &str) -> Allow {
        Allow {
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            source: source.into(),
        }
    }

    #[test]
    fn a_task_chain_is_flushed_and_refilled_in_one_commit() {
        let fw = Firewall {
            allow: vec![
                allow("tcp", 8080, 8080, "10.213.1.5/32"),
                allow("udp", 53, 60, "10.0.0.0/8"),
                allow("all", 0, 65535, "0.0.0.0/0"),
            ],
            ..Firewall::default()
        };
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            restore_input(id, Some(&fw)).unwrap(),
            "*filter\n\
             :GANTRY-0123456789abcdef0123 - [0:0]\n\
             -F GANTRY-0123456789abcdef0123\n\
             -A GANTRY-0123456789abcdef0123 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
             -A GANTRY-0123456789abcdef0123 -s 10.213.1.5/32 -p tcp --dport 8080:8080 -j ACCEPT\n\
             -A GANTRY-0123456789abcdef0123 -s 10.0.0.0/8 -p udp --dport 53:60 -j ACCEPT\n\
             -A GANTRY-0123456789abcdef0123 -s 0.0.0.0/0 -j ACCEPT\n\
             -A GANTRY-0123456789abcdef0123 -j DROP\n\
             COMMIT\n"
        );
        // No rules: replies only.
        assert_eq!(
            restore_input("t1", Some(&Firewall::default())).unwrap(),
            "*filter\n:GANTRY-t1 - [0:0]\n-F GANTRY-t1\n\
             -A GANTRY-t1 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
             -A GANTRY-t1 -j DROP\nCOMMIT\n"
        );
    }

    #[test]
    fn removal_declares_flushes_and_deletes_the_chain() {
        // Declaring first makes the deletion work whether or not the chain exists.
        assert_eq!(
            restore_input("t1", None).unwrap(),
            "*filter\n:GANTRY-t1 - [0:0]\n-F GANTRY-t1\n-X GANTRY-t1\nCOMMIT\n"
        );
    }

    #[test]
    fn nothing_from_the_server_can_add_lines_or_words() {
        for source in [
            "10.0.0.0/8 -j ACCEPT",
            "10.0.0.0/8\n-A DOCKER-USER -j ACCEPT",
            "\"10.0.0.0/8\"",
            "",
            "10.0.0.0/8#",
        ] {
            let fw = Firewall {
                allow: vec![allow("tcp", 1, 2, source)],
                ..Firewall::default()
            };
            assert!(restore_input("t1", Some(&fw)).is_err(), "{source:?}");
        }
        for id in ["a b", "a\nb", "é"] {
            assert!(restore_input(id, None).is_err(), "{id:?}");
        }
        // IPv6 sources are words too.
        let fw = Firewall {
            allow: vec![allow("tcp", 1, 2, "fd00::/8")],
            ..Firewall::default()
        };
        assert!(restore_input("t1", Some(&fw)).is_ok());
    }
}
