//! The container runtime the agent drives, as a small trait: Docker is the real implementation
//! ([`crate::docker::DockerRuntime`]); unit tests can use a fake.

use std::collections::HashMap;
use std::future::Future;

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
}

/// The container operations the agent needs.
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Whether the image is present locally.
    fn image_present(&self, image: &str) -> impl Future<Output = Result<bool>> + Send;
    /// Pulls the image from its registry.
    fn pull(&self, image: &str) -> impl Future<Output = Result<()>> + Send;
    /// Creates a Docker volume if it does not exist.
    fn ensure_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        opts: &HashMap<String, String>,
        labels: &HashMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    /// Creates a bridge network with this subnet (`10.213.0.0/24`) and gateway if it does not exist.
    fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
    ) -> impl Future<Output = Result<()>> + Send;
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
}
