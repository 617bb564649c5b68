//! Starting gantry's DNS server (`--dns-listen`, `--dns-forward`): the address put on `lo`
//! when it is link-local, the sockets bound, upstreams read from the host's resolv.conf.

use gantry_discovery::server::{self, Forwarding};
use gantry_discovery::Discovery;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// `--dns-listen`: `off`, `ip` (port 53) or `ip:port`.
fn listen_addr(s: &str) -> anyhow::Result<Option<SocketAddr>> {
    if s == "off" {
        return Ok(None);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(Some(SocketAddr::new(ip, 53)));
    }
    s.parse().map(Some).map_err(|_| {
        anyhow::anyhow!("--dns-listen {s:?} is neither `off`, an address nor address:port")
    })
}

/// `--dns-forward`: `none`, `auto` (the host's nameservers) or `ip[:port],...`.
fn upstreams(s: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let parse = |a: &str| -> Option<SocketAddr> {
        a.parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, 53))
            .or_else(|_| a.parse())
            .ok()
    };
    match s {
        "none" => Ok(Vec::new()),
        "auto" => Ok(std::fs::read_to_string("/etc/resolv.conf")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|a| parse(a.trim()))
            .collect()),
        list => list
            .split(',')
            .map(|a| {
                parse(a.trim()).ok_or_else(|| {
                    anyhow::anyhow!("--dns-forward: {a:?} is not an address or address:port")
                })
            })
            .collect(),
    }
}

/// Starts the DNS server when `--dns-listen` asks for one. Returns the address containers
/// can be given as their DNS server: IPv4 at port 53, not a wildcard. A failure to bind is
/// a warning: the rest of gantry serves, and containers are not told of the server.
pub async fn start(
    discovery: &Arc<Discovery>,
    listen: &str,
    forward: &str,
) -> anyhow::Result<Option<Ipv4Addr>> {
    let Some(addr) = listen_addr(listen)? else {
        return Ok(None);
    };
    let upstreams = upstreams(forward)?;
    if let IpAddr::V4(ip) = addr.ip() {
        if ip.is_link_local() {
            let r = tokio::task::spawn_blocking(move || {
                gantry_agent::endpoint::route::ensure_on_lo(ip)
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::warn!(address = %ip, error = %e, "could not put the DNS server's address on lo");
            }
        }
    }
    let (udp, tcp) = match server::bind(addr).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "the DNS server could not listen: Cloud Map names resolve only through DiscoverInstances, and containers use Docker's DNS");
            return Ok(None);
        }
    };
    tracing::info!(%addr, upstreams = ?upstreams, "the DNS server answers for the private DNS namespaces");
    tokio::spawn(server::serve(
        discovery.clone(),
        udp,
        tcp,
        Forwarding {
            upstreams,
            timeout: Duration::from_secs(2),
        },
    ));
    Ok(match addr {
        SocketAddr::V4(a) if a.port() == 53 && !a.ip().is_unspecified() => Some(*a.ip()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_and_forward_settings_parse() {
        assert_eq!(listen_addr("off").unwrap(), None);
        assert_eq!(
            listen_addr("169.254.170.2").unwrap(),
            Some("169.254.170.2:53".parse().unwrap())
        );
        assert_eq!(
            listen_addr("127.0.0.1:5353").unwrap(),
            Some("127.0.0.1:5353".parse().unwrap())
        );
        assert!(listen_addr("nowhere").is_err());
        assert!(upstreams("none").unwrap().is_empty());
        assert_eq!(
            upstreams("10.0.0.2, 10.0.0.3:5353").unwrap(),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "10.0.0.3:5353".parse().unwrap()
            ]
        );
        assert!(upstreams("x").is_err());
    }
}
