//! The container runtime the agent drives, as a small trait: Docker is the real implementation
//! ([`crate::docker::DockerRuntime`]); unit tests can use a fake.

use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

pub type Result<T> = std::result::Result<T, RuntimeError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A published port: `host_port` `None` (or 0) asks for a dynamic host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub container_port: u16,
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

/// A Docker health check; durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSpec {
    pub test: Vec<String>,
    pub interval: u32,
    pub timeout: u32,
    pub retries: u32,
    pub start_period: u32,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: HashMap<String, String>,
    /// Hard limit, MiB.
    pub memory_mib: Option<i64>,
    /// Soft limit, MiB.
    pub memory_reservation_mib: Option<i64>,
    pub cpu_shares: i64,
    /// `bridge`, `host` or `none`.
    pub network_mode: String,
    pub ports: Vec<PortSpec>,
    pub health: Option<HealthSpec>,
    /// `source:target[:ro]`, a host path or a volume name as source.
    pub binds: Vec<String>,
    /// Docker names of containers whose volumes to mount (`name[:ro]`).
    pub volumes_from: Vec<String>,
    /// `name:alias`.
    pub links: Vec<String>,
    /// (name, soft, hard)
    pub ulimits: Vec<(String, i64, i64)>,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub shm_size_mib: Option<i64>,
    pub tmpfs: HashMap<String, String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub security_opt: Vec<String>,
    pub sysctls: HashMap<String, String>,
    pub open_stdin: bool,
    pub tty: bool,
    pub log_driver: Option<(String, HashMap<String, String>)>,
    /// On a user-defined network: the address and MAC to take.
    pub ipv4: Option<String>,
    pub mac: Option<String>,
    /// The cgroup the container joins (a FARGATE task's, with the task's limits).
    pub cgroup_parent: Option<String>,
    /// The OCI runtime (`runsc` for gVisor); the engine's default when absent.
    pub runtime: Option<String>,
}

/// A host port Docker bound for a container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: String,
    pub host_port: u16,
}

/// What the runtime reports about a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// Set once the container has run and exited.
    pub exit_code: Option<i64>,
    /// `true` when the container was ever started.
    pub started: bool,
    /// Docker's health status: `starting`, `healthy`, `unhealthy`.
    pub health: Option<String>,
    pub bindings: Vec<Binding>,
    /// The container's addresses on its networks (none when it shares another's namespace or
    /// is not running).
    pub ips: Vec<String>,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub image_id: Option<String>,
    /// When the container was created, started and (last) finished: RFC 3339 as the runtime
    /// says them; `None` for what has not happened.
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The file the engine writes the container's output to (Docker's json-file driver).
    pub log_path: Option<String>,
}

/// Which of a container's outputs a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogSource {
    /// Standard output (and a TTY container's whole output).
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it was written.
    pub stream: LogSource,
    /// When the runtime received it, in nanoseconds since the Unix epoch (`None` when the
    /// runtime did not say).
    pub timestamp_ns: Option<i64>,
    /// The line's bytes, without its line ending (a final line may lack one).
    pub line: Vec<u8>,
}

/// A container's log lines, oldest first ([`ContainerRuntime::logs`]). Dropping it closes it.
pub struct LogStream {
    lines: Pin<Box<dyn Stream<Item = Result<LogLine>> + Send>>,
}

impl LogStream {
    /// A stream of the lines `lines` yields.
    pub fn new(lines: impl Stream<Item = Result<LogLine>> + Send + 'static) -> Self {
        LogStream {
            lines: Box::pin(lines),
        }
    }

    /// The next line; `None` once the log ends (when following: once the container stopped).
    pub async fn next(&mut self) -> Option<Result<LogLine>> {
        self.lines.next().await
    }
}

impl std::fmt::Debug for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStream")
    }
}

/// One resource usage sample of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// When the agent got the sample, in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// CPU time the container has used, in nanoseconds (cumulative).
    pub cpu_total_ns: u64,
    /// CPU time the whole host has used, in nanoseconds (cumulative; with `cpu_total_ns`, the
    /// container's share between two samples).
    pub system_cpu_ns: u64,
    /// CPUs online on the host.
    pub online_cpus: u32,
    /// Memory the container uses, in bytes (page cache included, as the kernel counts it).
    pub memory_usage_bytes: u64,
    /// The container's memory limit, in bytes (the host's memory when it has none).
    pub memory_limit_bytes: u64,
    /// Bytes the container received, over all its interfaces (cumulative).
    pub network_rx_bytes: u64,
    /// Bytes the container sent, over all its interfaces (cumulative).
    pub network_tx_bytes: u64,
}

/// A sample in Docker's stats shape (the figures a [`Stats`] has; the rest as Docker leaves
/// what it does not know: zero).
pub fn docker_shape(s: &Stats) -> serde_json::Value {
    let secs = s.timestamp_ns.div_euclid(1_000_000_000);
    let read = time_rfc3339(secs, s.timestamp_ns.rem_euclid(1_000_000_000));
    let cpu = serde_json::json!({
        "cpu_usage": {"total_usage": s.cpu_total_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "system_cpu_usage": s.system_cpu_ns,
        "online_cpus": s.online_cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    });
    serde_json::json!({
        "read": read,
        "preread": "0001-01-01T00:00:00Z",
        "pids_stats": {},
        "blkio_stats": {},
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu,
        "precpu_stats": {"cpu_usage": {"total_usage": 0}, "throttling_data": {}},
        "memory_stats": {"usage": s.memory_usage_bytes, "limit": s.memory_limit_bytes},
        "networks": {"eth0": {"rx_bytes": s.network_rx_bytes, "tx_bytes": s.network_tx_bytes}},
    })
}

/// `secs` (and `nanos`) since the Unix epoch as RFC 3339 in UTC, as Docker writes times
/// (whole seconds without a fraction).
pub fn time_rfc3339(secs: i64, nanos: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let fraction = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Periodic resource usage samples of a container ([`ContainerRuntime::stats`]). Dropping it
/// closes it.
pub struct StatsStream {
    samples: Pin<Box<dyn Stream<Item = Result<Stats>> + Send>>,
}

impl StatsStream {
    /// A stream of the samples `samples` yields.
    pub fn new(samples: impl Stream<Item = Result<Stats>> + Send + 'static) -> Self {
        StatsStream {
            samples: Box::pin(samples),
        }
    }

    /// The next sample; `None` once the stream ends (the container stopped or went).
    pub async fn next(&mut self) -> Option<Result<Stats>> {
        self.samples.next().await
    }
}

impl std::fmt::Debug for StatsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsStream")
    }
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// An RFC 3339 time (`2024-05-01T12:34:56.123456789Z`, or with a `±hh:mm` offset) in
/// nanoseconds since the Unix epoch; `None` when it is not one.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        (!part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()))
            .then(|| part.parse().ok())
            .flatten()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Leap seconds (60) count as the next second.
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The container operations the agent needs.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Whether the image is present locally.
    fn image_present(&self, image: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Pulls the image from its registry.
    /// Pulls the image from its registry, with the registry's credentials when given.
    fn pull(
        &self,
        image: &str,
        auth: Option<&gantry_api::agent::RegistryAuth>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Creates a Docker volume if it does not exist.
    fn ensure_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        opts: &HashMap<String, String>,
        labels: &HashMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Creates a bridge network with this subnet (`10.213.0.0/24`) and gateway if it does not
    /// exist, labelled with the installation that owns it.
    fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        installation: &str,
    ) -> impl Future<Output = Result<()>> + Send;
    /// The ranges the engine's networks hold, with the installation label of each.
    fn engine_networks(
        &self,
    ) -> impl Future<Output = Result<Vec<gantry_api::agent::EngineNetwork>>> + Send;
    /// Admits only `fw`'s traffic to the task at `ip` (`None`: removes the task's rules).
    fn set_firewall(
        &self,
        task_id: &str,
        ip: &str,
        fw: Option<&gantry_api::agent::Firewall>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Makes sure the image of the pause container exists; returns its name.
    fn ensure_pause_image(&self) -> impl Future<Output = Result<String>> + Send;
    /// Creates a container; returns its id.
    fn create(&self, spec: &ContainerSpec) -> impl Future<Output = Result<String>> + Send;
    fn start(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// SIGTERM, then SIGKILL after `timeout_secs`.
    fn stop(&self, id: &str, timeout_secs: u32) -> impl Future<Output = Result<()>> + Send;
    fn remove(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// `None` when the container does not exist.
    fn inspect(&self, id: &str) -> impl Future<Output = Result<Option<Observed>>> + Send;
    /// Containers (running or not) carrying every given label.
    fn list(&self, labels: &[(&str, &str)]) -> impl Future<Output = Result<Vec<Observed>>> + Send;
    /// Resolves when the container is not running (at once if it is not).
    fn wait(&self, id: &str) -> impl Future<Output = ()> + Send;
    /// The container's stdout and stderr, line by line in the order written, each line tagged
    /// with its stream and time. `since` (nanoseconds since the Unix epoch) skips older lines;
    /// `follow` keeps the stream open for new lines until the container stops. An error when
    /// the container does not exist.
    fn logs(
        &self,
        id: &str,
        since: Option<i64>,
        follow: bool,
    ) -> impl Future<Output = Result<LogStream>> + Send;
    /// The container's resource usage, a sample about every second while it runs. An error
    /// when the container does not exist.
    fn stats(&self, id: &str) -> impl Future<Output = Result<StatsStream>> + Send;

    /// One resource usage sample of a container in Docker's stats shape (with the previous
    /// sample's CPU figures in `precpu_stats`), as ECS's task metadata serves it.
    fn docker_stats(&self, id: &str) -> impl Future<Output = Result<serde_json::Value>> + Send;
    /// How the engine manages cgroups, for the cgroup parent of FARGATE tasks.
    fn cgroup_driver(&self) -> crate::cgroups::CgroupDriver {
        crate::cgroups::CgroupDriver::Cgroupfs
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ns;

    #[test]
    fn rfc3339_times_parse_to_nanoseconds() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        // Docker's form: nine digits.
        assert_eq!(
            parse_rfc3339_ns("2024-05-01T12:34:56.123456789Z"),
            Some(1_714_566_896_123_456_789)
        );
        // Extra digits are cut, offsets applied.
        assert_eq!(
            parse_rfc3339_ns("2024-05-01T14:34:56.1234567891+02:00"),
            Some(1_714_566_896_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_ns("2000-02-29T00:00:00-00:30"),
            Some((951_782_400 + 1800) * 1_000_000_000)
        );
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:34:56",
            "2024-13-01T00:00:00Z",
            "2024-05-01T12:34:56.Z",
            "2024-05-01T12:34:56Zjunk",
            "20é4-05-01T12:34:56Z",
            "2024-05-01T12:34:56+0200",
            "+024-05-01T12:34:56Z",
        ] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad:?}");
        }
    }
}
