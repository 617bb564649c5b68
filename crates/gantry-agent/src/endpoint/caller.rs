//! Which container is calling the endpoint.
//!
//! Bridge and awsvpc tasks have addresses of their own: the caller's source address names its
//! task (the agent's registry maps addresses to tasks). Host-mode containers share the host's
//! addresses, so their connection is traced to its socket's owner instead: the client end of the
//! connection in the host's `/proc/net/tcp` gives the socket's inode, a process holding that
//! socket gives its cgroup, and the cgroup path names the container.

use std::net::{Ipv4Addr, SocketAddr};

/// The runtime id of the container whose process holds the client end of a connection from
/// `peer` (a connection from this host's network namespace). `None` when no process of a
/// container holds it.
pub fn container_of_local_peer(peer: SocketAddr) -> Option<String> {
    let SocketAddr::V4(peer) = peer else {
        return None;
    };
    let tcp = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inode = socket_inode(&tcp, *peer.ip(), peer.port())?;
    let wanted = format!("socket:[{inode}]");
    for proc_dir in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = proc_dir.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_dir.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str())
        });
        if holds {
            let cgroup = std::fs::read_to_string(proc_dir.path().join("cgroup")).ok()?;
            return container_of_cgroup(&cgroup);
        }
    }
    None
}

/// The inode of the socket whose local end is `ip:port`, from `/proc/net/tcp`'s text.
pub fn socket_inode(table: &str, ip: Ipv4Addr, port: u16) -> Option<u64> {
    // The kernel prints an IPv4 address as its 32 bits in host order, in hex.
    let want = format!("{:08X}:{port:04X}", u32::from_ne_bytes(ip.octets()));
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str()))
            .then(|| f.get(9)?.parse().ok())
            .flatten()
    })
}

/// The container id (64 hex digits) in a process's `/proc/<pid>/cgroup`: `/docker/<id>`,
/// `<parent>/<id>` or `docker-<id>.scope`.
pub fn container_of_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let path = l.splitn(3, ':').nth(2)?;
        path.split('/').rev().find_map(|seg| {
            let seg = seg.strip_prefix("docker-").unwrap_or(seg);
            let seg = seg.strip_suffix(".scope").unwrap_or(seg);
            (seg.len() == 64 && seg.bytes().all(|b| b.is_ascii_hexdigit())).then(|| seg.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_socket_is_found_by_its_address() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 02AAFEA9:C350 02AAFEA9:0050 01 00000000:00000000 00:00000000 00000000     0        0 67890 1 0000000000000000 20 4 30 10 -1\n";
        let be = cfg!(target_endian = "big");
        if !be {
            assert_eq!(
                socket_inode(table, Ipv4Addr::new(127, 0, 0, 1), 8080),
                Some(12345)
            );
            assert_eq!(
                socket_inode(table, Ipv4Addr::new(169, 254, 170, 2), 50000),
                Some(67890)
            );
        }
        assert_eq!(socket_inode(table, Ipv4Addr::new(10, 0, 0, 1), 1), None);
    }

    #[test]
    fn container_ids_come_from_docker_cgroup_paths() {
        let id = "a".repeat(64);
        assert_eq!(
            container_of_cgroup(&format!(
                "12:memory:/docker/{id}\n1:name=systemd:/docker/{id}\n"
            )),
            Some(id.clone())
        );
        assert_eq!(
            container_of_cgroup(&format!("0::/system.slice/docker-{id}.scope\n")),
            Some(id.clone())
        );
        assert_eq!(
            container_of_cgroup(&format!("4:cpu:/gantry-task-1/{id}\n")),
            Some(id)
        );
        assert_eq!(
            container_of_cgroup("0::/user.slice/session-1.scope\n"),
            None
        );
    }
}
