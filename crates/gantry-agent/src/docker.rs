//! [`ContainerRuntime`] on the Docker Engine API, through bollard (API version negotiated, so a
//! Debian 20.10 engine on API 1.41 works).

use crate::runtime::*;
use crate::spec;
use bollard::container::LogOutput;
use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, PortBinding,
    ResourcesUlimits, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, RemoveVolumeOptions, StatsOptions, StopContainerOptions,
    WaitContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};

/// The Docker Engine.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    /// "Docker version 20.10.24" style string, for the instance's versionInfo.
    pub version: String,
    pub api_version: String,
    /// The OCI runtimes the engine offers (`runc`, and `runsc` when gVisor is set up).
    pub runtimes: Vec<String>,
    /// The engine's cgroup driver (`CgroupDriver` in `docker info`).
    pub cgroup_driver: crate::cgroups::CgroupDriver,
}

fn err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError(e.to_string())
}

const SECOND_NS: i64 = 1_000_000_000;

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST` or the unix socket) and negotiates the API
    /// version.
    pub async fn connect() -> Result<DockerRuntime> {
        let docker = Docker::connect_with_local_defaults().map_err(err)?;
        let docker = docker.negotiate_version().await.map_err(err)?;
        let v = docker.version().await.map_err(err)?;
        let info = docker.info().await.ok().unwrap_or_default();
        let mut runtimes: Vec<String> = info
            .runtimes
            .map(|r| r.into_keys().collect())
            .unwrap_or_default();
        runtimes.sort();
        let cgroup_driver = crate::cgroups::CgroupDriver::from_docker(
            &info
                .cgroup_driver
                .map(|d| d.to_string())
                .unwrap_or_default(),
        );
        Ok(DockerRuntime {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            runtimes,
            cgroup_driver,
            docker,
        })
    }

    fn observe(id: String, c: bollard::models::ContainerInspectResponse) -> Observed {
        let state = c.state.unwrap_or_default();
        let happened = |t: &Option<String>| t.clone().filter(|t| !t.starts_with("0001-"));
        let (created_at, started_at, finished_at) = (
            happened(&c.created),
            happened(&state.started_at),
            happened(&state.finished_at),
        );
        let running = state.running.unwrap_or(false);
        let started = state
            .started_at
            .as_deref()
            .is_some_and(|s| !s.starts_with("0001-"));
        let mut bindings = Vec::new();
        let (ports, networks) = c
            .network_settings
            .map(|n| (n.ports, n.networks))
            .unwrap_or_default();
        let mut ips: Vec<String> = networks
            .unwrap_or_default()
            .into_values()
            .filter_map(|n| n.ip_address)
            .filter(|ip| !ip.is_empty())
            .collect();
        ips.sort();
        for (key, binds) in ports.unwrap_or_default() {
            let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
            let (Ok(port), protocol) = (
                port.parse::<u16>(),
                if proto == "udp" {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
            ) else {
                continue;
            };
            for b in binds.unwrap_or_default() {
                // Like the ECS agent (ECS_EXCLUDE_IPV6_PORTBINDING, on by default), report the
                // IPv4 binding only; Docker 20.10 adds an IPv6 twin of each.
                if b.host_ip.as_deref().is_some_and(|ip| ip.contains(':')) {
                    continue;
                }
                if let Some(hp) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) {
                    bindings.push(Binding {
                        container_port: port,
                        protocol,
                        host_ip: b.host_ip.unwrap_or_else(|| "0.0.0.0".into()),
                        host_port: hp,
                    });
                }
            }
        }
        bindings.sort_by_key(|b| (b.container_port, b.host_ip.clone()));
        Observed {
            id,
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            labels: c.config.and_then(|c| c.labels).unwrap_or_default(),
            running,
            exit_code: (!running && started).then(|| state.exit_code.unwrap_or(0)),
            started,
            health: state.health.and_then(|h| h.status).map(|s| s.to_string()),
            bindings,
            ips,
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|e| !e.is_empty()),
            image_id: c.image,
            log_path: c.log_path.filter(|p| !p.is_empty()),
            created_at,
            started_at,
            finished_at,
        }
    }
}

/// The image that holds awsvpc tasks' network namespaces, built locally from the embedded pause
/// program (no registry involved).
pub const PAUSE_IMAGE: &str = "gantry/pause:1";

const PAUSE_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pause"));

/// A tar archive (ustar) of `(name, mode, content)` entries: a Docker build context.
fn tar(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, mode, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let field = |h: &mut [u8; 512], at: usize, len: usize, v: String| {
            h[at..at + v.len().min(len)].copy_from_slice(&v.as_bytes()[..v.len().min(len)])
        };
        field(&mut h, 100, 8, format!("{mode:07o}\0"));
        field(&mut h, 108, 8, "0000000\0".into());
        field(&mut h, 116, 8, "0000000\0".into());
        field(&mut h, 124, 12, format!("{:011o}\0", data.len()));
        field(&mut h, 136, 12, "00000000000\0".into());
        h[156] = b'0';
        field(&mut h, 257, 6, "ustar\0".into());
        field(&mut h, 263, 2, "00".into());
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        field(&mut h, 148, 8, format!("{sum:06o}\0 "));
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

impl DockerRuntime {
    /// Removes gantry subnet networks that use `subnet` but serve no container (left by an
    /// earlier installation or run), never the network `wanted` itself (another task's worker
    /// may have just made it, and not attached its pause container yet); returns how many went.
    async fn remove_stale_networks(&self, subnet: &str, wanted: &str) -> usize {
        let Ok(nets) = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
        else {
            return 0;
        };
        let mut removed = 0;
        for n in nets {
            let ours = n
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key("gantry.subnet"));
            let same = n
                .ipam
                .as_ref()
                .and_then(|i| i.config.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.subnet.as_deref() == Some(subnet)));
            let Some(name) = n.name.clone() else { continue };
            if !(ours && same) || name == wanted {
                continue;
            }
            let busy = self
                .docker
                .inspect_network(
                    &name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
                .ok()
                .and_then(|i| i.containers)
                .is_some_and(|c| !c.is_empty());
            if !busy && self.docker.remove_network(&name).await.is_ok() {
                tracing::info!(network = %name, %subnet, "removed an unused network that held the subnet's range");
                removed += 1;
            }
        }
        removed
    }

    /// The gateway of Docker's default `bridge` network: the host's address that its
    /// containers (and every other bridge's, through their gateways) reach host ports at.
    /// Docker leaves it out of the network's IPAM when it chose it: then it is the subnet's
    /// first address, as Docker chooses it.
    pub async fn bridge_gateway(&self) -> Option<std::net::Ipv4Addr> {
        let configs = self
            .docker
            .inspect_network(
                "bridge",
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .ok()?
            .ipam?
            .config?;
        configs.iter().find_map(|c| {
            if let Some(g) = c.gateway.as_deref().and_then(|g| g.parse().ok()) {
                return Some(g);
            }
            let (net, _) = c.subnet.as_deref()?.split_once('/')?;
            let net: std::net::Ipv4Addr = net.parse().ok()?;
            Some(std::net::Ipv4Addr::from(u32::from(net).checked_add(1)?))
        })
    }
}

/// The time of a line's first part, and its bytes so far.
type Partial = (Option<i64>, Vec<u8>);

/// Cuts Docker's log frames into lines. With `timestamps=true` each frame starts with the time
/// Docker received it (`2024-05-01T12:34:56.123456789Z `); a frame may hold part of a line
/// (Docker splits long lines), one line, or (TTY output) several.
#[derive(Debug, Default)]
struct LineSplitter {
    /// A line begun but not ended, per stream, with the time of its first part.
    partial: HashMap<LogSource, Partial>,
    ready: VecDeque<LogLine>,
    /// Lines older than this (nanoseconds) are dropped.
    since: Option<i64>,
}

impl LineSplitter {
    fn new(since: Option<i64>) -> Self {
        LineSplitter {
            since,
            ..Self::default()
        }
    }

    fn push(&mut self, frame: LogOutput) {
        let (stream, bytes, tty) = match frame {
            LogOutput::StdOut { message } => (LogSource::Stdout, message, false),
            LogOutput::StdErr { message } => (LogSource::Stderr, message, false),
            LogOutput::Console { message } => (LogSource::Stdout, message, true),
            LogOutput::StdIn { .. } => return,
        };
        let mut rest: &[u8] = &bytes;
        let mut timestamp = None;
        if let Some(space) = rest.iter().position(|b| *b == b' ') {
            if let Some(ts) = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(parse_rfc3339_ns)
            {
                timestamp = Some(ts);
                rest = &rest[space + 1..];
            }
        }
        while !rest.is_empty() {
            let (piece, ended, next) = match rest.iter().position(|b| *b == b'\n') {
                Some(nl) => (&rest[..nl], true, &rest[nl + 1..]),
                None => (rest, false, &rest[rest.len()..]),
            };
            let entry = self
                .partial
                .entry(stream)
                .or_insert_with(|| (timestamp, Vec::new()));
            entry.1.extend_from_slice(piece);
            if ended {
                if let Some((ts, mut line)) = self.partial.remove(&stream) {
                    if tty && line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    self.emit(stream, ts, line);
                }
            }
            rest = next;
        }
    }

    /// The end of the log: lines not ended yet are lines too.
    fn finish(&mut self) {
        let mut left: Vec<(LogSource, Partial)> = self.partial.drain().collect();
        left.sort_by_key(|(_, (ts, _))| *ts);
        for (stream, (ts, line)) in left {
            self.emit(stream, ts, line);
        }
    }

    fn emit(&mut self, stream: LogSource, timestamp_ns: Option<i64>, line: Vec<u8>) {
        if let (Some(since), Some(ts)) = (self.since, timestamp_ns) {
            if ts < since {
                return;
            }
        }
        self.ready.push_back(LogLine {
            stream,
            timestamp_ns,
            line,
        });
    }
}

/// Docker's stats sample in the agent's terms.
fn stats_of(s: bollard::models::ContainerStatsResponse) -> Stats {
    let cpu = s.cpu_stats.unwrap_or_default();
    let usage = cpu.cpu_usage.unwrap_or_default();
    let online_cpus = cpu.online_cpus.filter(|n| *n > 0).unwrap_or_else(|| {
        usage
            .percpu_usage
            .as_ref()
            .map(|p| u32::try_from(p.len()).unwrap_or(u32::MAX))
            .filter(|n| *n > 0)
            .unwrap_or(1)
    });
    let memory = s.memory_stats.unwrap_or_default();
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in s.networks.unwrap_or_default().into_values() {
        rx = rx.saturating_add(n.rx_bytes.unwrap_or(0));
        tx = tx.saturating_add(n.tx_bytes.unwrap_or(0));
    }
    Stats {
        timestamp_ns: now_ns(),
        cpu_total_ns: usage.total_usage.unwrap_or(0),
        system_cpu_ns: cpu.system_cpu_usage.unwrap_or(0),
        online_cpus,
        memory_usage_bytes: memory.usage.unwrap_or(0),
        memory_limit_bytes: memory.limit.unwrap_or(0),
        network_rx_bytes: rx,
        network_tx_bytes: tx,
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl ContainerRuntime for DockerRuntime {
    async fn image_present(&self, image: &str) -> Result<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(err(e)),
        }
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<&gantry_api::agent::RegistryAuth>,
    ) -> Result<()> {
        let (repo, tag) = split_image(image);
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(registry_of(&repo)),
            ..Default::default()
        });
        let opts = CreateImageOptions {
            from_image: Some(repo),
            tag: Some(tag),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(opts), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(err)?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(RuntimeError(e));
            }
        }
        Ok(())
    }

    async fn ensure_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        opts: &HashMap<String, String>,
        labels: &HashMap<String, String>,
    ) -> Result<()> {
        if self.docker.inspect_volume(name).await.is_ok() {
            return Ok(());
        }
        let body = VolumeCreateOptions {
            name: Some(name.to_string()),
            driver: Some(driver.unwrap_or("local").to_string()),
            driver_opts: Some(opts.clone()),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        self.docker.create_volume(body).await.map_err(err)?;
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn engine_networks(&self) -> Result<Vec<gantry_api::agent::EngineNetwork>> {
        let nets = self
            .docker
            .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
            .await
            .map_err(err)?;
        let mut out = Vec::new();
        for n in nets {
            let installation = n
                .labels
                .as_ref()
                .and_then(|l| l.get(spec::labels::INSTALLATION).cloned())
                .unwrap_or_default();
            for c in n.ipam.iter().flat_map(|i| i.config.iter().flatten()) {
                if let Some(cidr) = c.subnet.as_ref().filter(|s| !s.contains(':')) {
                    out.push(gantry_api::agent::EngineNetwork {
                        cidr: cidr.clone(),
                        installation: installation.clone(),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        installation: &str,
    ) -> Result<()> {
        if self
            .docker
            .inspect_network(
                name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_ok()
        {
            return Ok(());
        }
        let body = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(bollard::models::Ipam {
                config: Some(vec![bollard::models::IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(gateway.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(HashMap::from([
                ("gantry.subnet".to_string(), name.to_string()),
                (
                    spec::labels::INSTALLATION.to_string(),
                    installation.to_string(),
                ),
            ])),
            ..Default::default()
        };
        let exists = || async {
            self.docker
                .inspect_network(
                    name,
                    None::<bollard::query_parameters::InspectNetworkOptions>,
                )
                .await
                .is_ok()
        };
        let first = match self.docker.create_network(body.clone()).await {
            Ok(_) => return Ok(()),
            // Another worker (or agent) made it meanwhile.
            Err(_) if exists().await => return Ok(()),
            Err(_) if self.remove_stale_networks(subnet, name).await > 0 => {
                self.docker.create_network(body).await
            }
            other => other,
        };
        if first.is_ok() {
            return Ok(());
        }
        // Another worker's creation of the same network may hold the range before its name
        // shows: give it a moment to appear.
        for _ in 0..10 {
            if exists().await {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        match first {
            Ok(_) => Ok(()),
            Err(e) => Err(RuntimeError(format!(
                "Docker refused to create the network {name} for {subnet} (does another network, perhaps another gantry installation's, use that range?): {e}"
            ))),
        }
    }

    async fn set_firewall(
        &self,
        task_id: &str,
        ip: &str,
        fw: Option<&gantry_api::agent::Firewall>,
    ) -> Result<()> {
        let (task_id, ip, fw) = (task_id.to_string(), ip.to_string(), fw.cloned());
        tokio::task::spawn_blocking(move || crate::firewall::apply(&task_id, &ip, fw.as_ref()))
            .await
            .map_err(err)?
            .map_err(RuntimeError)
    }

    async fn ensure_pause_image(&self) -> Result<String> {
        if self.image_present(PAUSE_IMAGE).await? {
            return Ok(PAUSE_IMAGE.to_string());
        }
        if PAUSE_BINARY.is_empty() {
            return Err(RuntimeError(
                "this agent was built without the pause program (no static C toolchain)".into(),
            ));
        }
        let dockerfile = b"FROM scratch\nCOPY pause /pause\nENTRYPOINT [\"/pause\"]\n";
        let context = tar(&[
            ("Dockerfile", 0o644, dockerfile),
            ("pause", 0o755, PAUSE_BINARY),
        ]);
        let opts = bollard::query_parameters::BuildImageOptions {
            t: Some(PAUSE_IMAGE.to_string()),
            rm: true,
            ..Default::default()
        };
        let mut stream =
            self.docker
                .build_image(opts, None, Some(bollard::body_full(context.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(err)?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(RuntimeError(e));
            }
        }
        Ok(PAUSE_IMAGE.to_string())
    }

    async fn create(&self, s: &ContainerSpec) -> Result<String> {
        let mut exposed = HashMap::new();
        let mut port_bindings = HashMap::new();
        for p in &s.ports {
            let key = format!("{}/{}", p.container_port, p.protocol.as_str());
            exposed.insert(key.clone(), HashMap::new());
            if s.network_mode == "bridge" {
                let host_port = p
                    .host_port
                    .filter(|h| *h != 0)
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                port_bindings.insert(
                    key,
                    Some(vec![PortBinding {
                        host_ip: None,
                        host_port: Some(host_port),
                    }]),
                );
            }
        }
        let mib = |m: i64| m * 1024 * 1024;
        let host_config = HostConfig {
            memory: s.memory_mib.map(mib),
            memory_reservation: s.memory_reservation_mib.map(mib),
            cpu_shares: Some(s.cpu_shares),
            network_mode: Some(s.network_mode.clone()),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            binds: (!s.binds.is_empty()).then(|| s.binds.clone()),
            volumes_from: (!s.volumes_from.is_empty()).then(|| s.volumes_from.clone()),
            links: (!s.links.is_empty()).then(|| s.links.clone()),
            ulimits: (!s.ulimits.is_empty()).then(|| {
                s.ulimits
                    .iter()
                    .map(|(n, soft, hard)| ResourcesUlimits {
                        name: Some(n.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect()
            }),
            init: s.init.then_some(true),
            cap_add: (!s.cap_add.is_empty()).then(|| s.cap_add.clone()),
            cap_drop: (!s.cap_drop.is_empty()).then(|| s.cap_drop.clone()),
            readonly_rootfs: s.readonly_rootfs.then_some(true),
            privileged: s.privileged.then_some(true),
            shm_size: s.shm_size_mib.map(mib),
            tmpfs: (!s.tmpfs.is_empty()).then(|| s.tmpfs.clone()),
            dns: (!s.dns.is_empty()).then(|| s.dns.clone()),
            dns_search: (!s.dns_search.is_empty()).then(|| s.dns_search.clone()),
            extra_hosts: (!s.extra_hosts.is_empty()).then(|| s.extra_hosts.clone()),
            security_opt: (!s.security_opt.is_empty()).then(|| s.security_opt.clone()),
            sysctls: (!s.sysctls.is_empty()).then(|| s.sysctls.clone()),
            cgroup_parent: s.cgroup_parent.clone(),
            runtime: s.runtime.clone(),
            log_config: s.log_driver.as_ref().map(|(t, c)| HostConfigLogConfig {
                typ: Some(t.clone()),
                config: Some(c.clone()),
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(s.image.clone()),
            entrypoint: s.entrypoint.clone(),
            cmd: s.command.clone(),
            env: Some(s.env.clone()),
            working_dir: s.working_dir.clone(),
            user: s.user.clone(),
            hostname: s.hostname.clone(),
            labels: Some(s.labels.clone()),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck: s.health.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(i64::from(h.interval) * SECOND_NS),
                timeout: Some(i64::from(h.timeout) * SECOND_NS),
                retries: Some(i64::from(h.retries)),
                start_period: Some(i64::from(h.start_period) * SECOND_NS),
                start_interval: None,
            }),
            open_stdin: s.open_stdin.then_some(true),
            tty: s.tty.then_some(true),
            host_config: Some(host_config),
            mac_address: s.mac.clone(),
            networking_config: s.ipv4.as_ref().map(|ip| bollard::models::NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    s.network_mode.clone(),
                    bollard::models::EndpointSettings {
                        ipam_config: Some(bollard::models::EndpointIpamConfig {
                            ipv4_address: Some(ip.clone()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptions {
            name: Some(s.name.clone()),
            ..Default::default()
        };
        let r = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(err)?;
        Ok(r.id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(err)
    }

    async fn stop(&self, id: &str, timeout_secs: u32) -> Result<()> {
        let opts = StopContainerOptions {
            t: Some(timeout_secs as i32),
            signal: None,
        };
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let opts = RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn inspect(&self, id: &str) -> Result<Option<Observed>> {
        match self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => Ok(Some(Self::observe(
                c.id.clone().unwrap_or_else(|| id.to_string()),
                c,
            ))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<Observed>> {
        let filters = HashMap::from([(
            "label".to_string(),
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )]);
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let summaries = self.docker.list_containers(Some(opts)).await.map_err(err)?;
        let mut out = Vec::new();
        for s in summaries {
            if let Some(id) = s.id {
                if let Some(o) = self.inspect(&id).await? {
                    out.push(o);
                }
            }
        }
        Ok(out)
    }

    async fn wait(&self, id: &str) {
        let opts = WaitContainerOptions {
            condition: "not-running".to_string(),
        };
        let mut s = self.docker.wait_container(id, Some(opts));
        // The stream ends (or errors, for a non-zero exit) when the container stops.
        let _ = s.next().await;
    }

    async fn logs(&self, id: &str, since: Option<i64>, follow: bool) -> Result<LogStream> {
        // Docker answers a log request for a missing container only once the stream is read.
        if self.inspect(id).await?.is_none() {
            return Err(RuntimeError(format!("no such container: {id}")));
        }
        let opts = LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            // Docker's `since` is in whole seconds; the splitter drops what is older within
            // that second.
            since: since
                .map(|ns| i32::try_from(ns.div_euclid(1_000_000_000).max(0)).unwrap_or(i32::MAX))
                .unwrap_or(0),
            timestamps: true,
            ..Default::default()
        };
        let frames = Box::pin(self.docker.logs(id, Some(opts)));
        let lines = futures_util::stream::unfold(
            (frames, LineSplitter::new(since), false),
            |(mut frames, mut splitter, mut ended)| async move {
                loop {
                    if let Some(line) = splitter.ready.pop_front() {
                        return Some((Ok(line), (frames, splitter, ended)));
                    }
                    if ended {
                        return None;
                    }
                    match frames.next().await {
                        Some(Ok(frame)) => splitter.push(frame),
                        Some(Err(e)) => {
                            // Report the error after the lines already read; then stop.
                            splitter.finish();
                            ended = true;
                            if splitter.ready.is_empty() {
                                return Some((Err(err(e)), (frames, splitter, ended)));
                            }
                            tracing::debug!(error = %e, "container log stream failed");
                        }
                        None => {
                            splitter.finish();
                            ended = true;
                        }
                    }
                }
            },
        );
        Ok(LogStream::new(lines))
    }

    async fn stats(&self, id: &str) -> Result<StatsStream> {
        if self.inspect(id).await?.is_none() {
            return Err(RuntimeError(format!("no such container: {id}")));
        }
        let opts = StatsOptions {
            stream: true,
            one_shot: false,
        };
        let samples = self
            .docker
            .stats(id, Some(opts))
            .map(|r| r.map(stats_of).map_err(err));
        Ok(StatsStream::new(samples))
    }

    async fn docker_stats(&self, id: &str) -> Result<serde_json::Value> {
        let opts = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut s = self.docker.stats(id, Some(opts));
        match s.next().await {
            Some(Ok(sample)) => serde_json::to_value(sample)
                .map_err(|e| RuntimeError(format!("encoding stats: {e}"))),
            Some(Err(e)) => Err(err(e)),
            None => Err(RuntimeError(format!("no stats for {id}"))),
        }
    }

    fn cgroup_driver(&self) -> crate::cgroups::CgroupDriver {
        self.cgroup_driver
    }
}

/// The registry a repository lives in: its first component when that names a host (has a
/// `.` or a `:`, or is `localhost`), Docker Hub otherwise.
pub fn registry_of(repo: &str) -> String {
    match repo.split_once('/') {
        Some((host, _)) if host.contains(['.', ':']) || host == "localhost" => host.to_string(),
        _ => "https://index.docker.io/v1/".to_string(),
    }
}

/// `repo[:tag]` or `repo@digest` → (repo, tag or digest); `latest` when untagged.
pub fn split_image(image: &str) -> (String, String) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(s: &str) -> LogOutput {
        LogOutput::StdOut {
            message: s.as_bytes().to_vec().into(),
        }
    }

    fn err_(s: &str) -> LogOutput {
        LogOutput::StdErr {
            message: s.as_bytes().to_vec().into(),
        }
    }

    fn lines(s: &LineSplitter) -> Vec<(LogSource, Option<i64>, String)> {
        s.ready
            .iter()
            .map(|l| {
                (
                    l.stream,
                    l.timestamp_ns,
                    String::from_utf8_lossy(&l.line).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn log_frames_become_tagged_lines() {
        let mut s = LineSplitter::new(None);
        s.push(out("1970-01-01T00:00:01.000000000Z one\n"));
        s.push(err_("1970-01-01T00:00:02.000000000Z two\n"));
        // Docker splits a long line: parts without a newline, the last with it.
        s.push(out("1970-01-01T00:00:03.000000000Z thr"));
        s.push(err_("1970-01-01T00:00:03.500000000Z four\n"));
        s.push(out("1970-01-01T00:00:04.000000000Z ee\n"));
        // No timestamp (or not one): the whole frame is the line.
        s.push(out("not-a-time five\n"));
        s.push(out("1970-01-01T00:00:05.000000000Z "));
        s.push(out("1970-01-01T00:00:06.000000000Z \n"));
        s.push(LogOutput::StdIn {
            message: b"ignored\n".to_vec().into(),
        });
        s.push(out("1970-01-01T00:00:07.000000000Z unended"));
        s.finish();
        let sec = |n: i64| Some(n * 1_000_000_000);
        assert_eq!(
            lines(&s),
            vec![
                (LogSource::Stdout, sec(1), "one".into()),
                (LogSource::Stderr, sec(2), "two".into()),
                (LogSource::Stderr, Some(3_500_000_000), "four".into()),
                (LogSource::Stdout, sec(3), "three".into()),
                (LogSource::Stdout, None, "not-a-time five".into()),
                (LogSource::Stdout, sec(6), "".into()),
                (LogSource::Stdout, sec(7), "unended".into()),
            ]
        );
    }

    #[test]
    fn tty_output_splits_lines_and_drops_carriage_returns() {
        let mut s = LineSplitter::new(None);
        s.push(LogOutput::Console {
            message: b"1970-01-01T00:00:01Z a\r\nb\r\n".to_vec().into(),
        });
        assert_eq!(
            lines(&s),
            vec![
                (LogSource::Stdout, Some(1_000_000_000), "a".into()),
                (LogSource::Stdout, Some(1_000_000_000), "b".into()),
            ]
        );
    }

    #[test]
    fn since_drops_older_lines_within_the_second() {
        let mut s = LineSplitter::new(Some(1_500_000_000));
        s.push(out("1970-01-01T00:00:01.400000000Z old\n"));
        s.push(out("1970-01-01T00:00:01.500000000Z new\n"));
        assert_eq!(
            lines(&s),
            vec![(LogSource::Stdout, Some(1_500_000_000), "new".into())]
        );
    }

    #[test]
    fn stats_samples_map_and_sum_networks() {
        let v = serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 5, "percpu_usage": [2, 3]}, "system_cpu_usage": 100},
            "memory_stats": {"usage": 4096, "limit": 8192},
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 1}, "eth1": {"rx_bytes": 5, "tx_bytes": 2}}
        });
        let s = stats_of(serde_json::from_value(v).unwrap());
        assert_eq!(
            (s.cpu_total_ns, s.system_cpu_ns, s.online_cpus),
            (5, 100, 2)
        );
        assert_eq!((s.memory_usage_bytes, s.memory_limit_bytes), (4096, 8192));
        assert_eq!((s.network_rx_bytes, s.network_tx_bytes), (15, 3));
        // An empty sample (a stopped container's) maps without panicking.
        let empty = stats_of(Default::default());
        assert_eq!((empty.online_cpus, empty.memory_usage_bytes), (1, 0));
    }

    #[test]
    fn image_names_split() {
        assert_eq!(split_image("nginx"), ("nginx".into(), "latest".into()));
        assert_eq!(split_image("nginx:1.2"), ("nginx".into(), "1.2".into()));
        assert_eq!(
            split_image("127.0.0.1:1/x"),
            ("127.0.0.1:1/x".into(), "latest".into())
        );
        assert_eq!(
            split_image("127.0.0.1:1/x:1"),
            ("127.0.0.1:1/x".into(), "1".into())
        );
        assert_eq!(split_image("a@sha256:00"), ("a".into(), "sha256:00".into()));
    }
}
