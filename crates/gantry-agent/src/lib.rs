//! gantry-agent: runs the tasks the control plane assigns to this host.
//!
//! The agent registers the host as a container instance, long-polls for the whole set of tasks
//! it must run (level-triggered: each answer is the complete desired set at a revision), runs a
//! worker per task ([`task::TaskWorker`]) and reports what it observes in batches. It is
//! autonomous: when the control plane is away, tasks keep running and reports wait; when the
//! agent restarts, it re-adopts its containers by their labels and starts nothing twice.

pub mod awslogs;
pub mod backoff;
pub mod cgroups;
pub mod docker;
pub mod endpoint;
pub mod firewall;
pub mod registry;
pub mod runtime;
pub mod sim;
pub mod spec;
pub mod task;

use backoff::Backoff;
use gantry_api::agent::*;
use gantry_api::model::{Attribute, Resource, VersionInfo};
use registry::TaskRegistry;
use runtime::{ContainerRuntime, Observed};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use task::{PullPolicy, TaskWorker, WorkerSettings};
use tokio::sync::{mpsc, watch};

/// How the agent is set up. Durations default to ECS's values (see [`AgentConfig::new`]).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control plane, e.g. `http://127.0.0.1:8100`.
    pub server: String,
    /// A PEM CA to trust for an `https://` server, besides none: gantry's servers use their
    /// own CA, never the system's.
    pub ca_pem: Option<Vec<u8>>,
    pub join_token: String,
    pub cluster: String,
    /// Where the agent keeps its container instance ARN.
    pub data_dir: PathBuf,
    /// CPU units to advertise (default: cores × 1024).
    pub cpu: Option<i64>,
    /// Memory MiB to advertise (default: the host's).
    pub memory_mib: Option<i64>,
    pub availability_zone: String,
    /// Shown as the instance's `ec2InstanceId` (default: the host name).
    pub hostname: Option<String>,
    /// What the host serves: `ec2`, `fargate` or `both`.
    pub capacity: String,
    /// The runtime for FARGATE tasks (`runsc` when the engine has gVisor).
    pub fargate_runtime: Option<String>,
    /// The capacity provider this host stands for.
    pub capacity_provider: Option<String>,
    pub attributes: Vec<(String, Option<String>)>,
    pub reserved_ports: Vec<u16>,
    pub pull_policy: PullPolicy,
    pub default_stop_timeout: Duration,
    pub cleanup_wait: Duration,
    pub tick: Duration,
    /// How long one poll may wait on the server.
    pub poll_wait: Duration,
    /// The first pause before retrying the server after a failure: consecutive failures wait
    /// up to twice as long each time (with full jitter, see [`backoff::Backoff`]), at most
    /// `retry_cap`.
    pub retry: Duration,
    /// The longest pause between retries of the server.
    pub retry_cap: Duration,
    /// Where the agent serves its tasks' endpoint (`169.254.170.2`): credentials, metadata,
    /// the API. `None`: no endpoint, and containers are not told of one.
    pub task_endpoint: Option<TaskEndpoint>,
    /// The DNS servers containers resolve through when their definition names none
    /// (gantry's, which answers for Cloud Map's private DNS namespaces); empty: Docker's.
    pub dns_servers: Vec<std::net::Ipv4Addr>,
}

/// The task endpoint's address and behaviour (see [`endpoint`]).
#[derive(Debug, Clone)]
pub struct TaskEndpoint {
    /// The address tasks reach at port 80 (ECS: 169.254.170.2).
    pub address: std::net::Ipv4Addr,
    /// The port the agent listens on at that address (ECS's agent: 51679).
    pub port: u16,
    /// How long a caller unknown by its address is looked for before it is refused.
    pub caller_wait: Duration,
}

impl Default for TaskEndpoint {
    fn default() -> Self {
        TaskEndpoint {
            address: std::net::Ipv4Addr::new(169, 254, 170, 2),
            port: 51679,
            caller_wait: Duration::from_secs(2),
        }
    }
}

/// The HTTP client for a gantry server: plain HTTP, or HTTPS trusting only `ca_pem`.
pub fn http_client(ca_pem: Option<&[u8]>) -> Result<reqwest::Client, reqwest::Error> {
    let mut b = reqwest::Client::builder().use_rustls_tls();
    if let Some(pem) = ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            b = b.add_root_certificate(cert);
        }
    }
    b.build()
}

impl AgentConfig {
    pub fn new(
        server: impl Into<String>,
        join_token: impl Into<String>,
        cluster: impl Into<String>,
        data_dir: PathBuf,
    ) -> Self {
        AgentConfig {
            server: server.into(),
            ca_pem: None,
            join_token: join_token.into(),
            cluster: cluster.into(),
            data_dir,
            cpu: None,
            memory_mib: None,
            availability_zone: "local-1a".into(),
            hostname: None,
            capacity: "ec2".into(),
            fargate_runtime: None,
            capacity_provider: None,
            attributes: Vec::new(),
            reserved_ports: vec![22, 2375, 2376, 51678, 51679, 51680],
            pull_policy: PullPolicy::Default,
            default_stop_timeout: Duration::from_secs(30),
            cleanup_wait: Duration::from_secs(3 * 3600),
            tick: Duration::from_secs(1),
            poll_wait: Duration::from_secs(15),
            retry: Duration::from_millis(100),
            retry_cap: Duration::from_secs(10),
            task_endpoint: None,
            dns_servers: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the control plane refused: {0}")]
    Refused(String),
    #[error("cannot reach the control plane: {0}")]
    Unreachable(String),
    #[error("agent state in {path}: {error}")]
    State { path: String, error: String },
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct SavedState {
    cluster: String,
    container_instance_arn: Option<String>,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn post<Req: Serialize, Resp: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, AgentError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base.trim_end_matches('/')))
            .bearer_auth(&self.token)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| AgentError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| AgentError::Unreachable(e.to_string()))?;
        if !status.is_success() {
            return Err(AgentError::Refused(
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| AgentError::Refused(format!("unreadable answer: {e}")))
    }
}

fn host_memory_mib() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// How long a poll may wait: `longest`, or less when credentials expiring at `renew_by` are
/// due for renewal sooner (half their remaining life, plus a second, at least a second).
fn poll_wait(longest: Duration, renew_by: Option<i64>, now: i64) -> Duration {
    match renew_by {
        Some(exp) => {
            let secs = ((exp - now).max(0) / 2 + 1) as u64;
            longest.min(Duration::from_secs(secs.max(1)))
        }
        None => longest,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn int_resource(name: &str, v: i64) -> Resource {
    Resource {
        name: Some(name.into()),
        r#type: Some("INTEGER".into()),
        integer_value: Some(v.clamp(0, i64::from(i32::MAX)) as i32),
        ..Resource::default()
    }
}

/// The agent: registration, the poll loop, the task workers and the reporter.
pub struct Agent<R: ContainerRuntime> {
    cfg: AgentConfig,
    rt: Arc<R>,
    docker_version: String,
    client: Client,
    registry: TaskRegistry,
}

struct WorkerHandle {
    desired: watch::Sender<AssignedTask>,
    join: tokio::task::JoinHandle<()>,
}

impl<R: ContainerRuntime> Agent<R> {
    pub fn new(cfg: AgentConfig, rt: Arc<R>, docker_version: impl Into<String>) -> Self {
        let http = http_client(cfg.ca_pem.as_deref()).unwrap_or_else(|e| {
            // Only a CA that does not parse gets here; the server will then refuse to talk.
            tracing::error!(error = %e, "the CA does not load: HTTPS to the server will fail");
            reqwest::Client::new()
        });
        let client = Client {
            http,
            base: cfg.server.clone(),
            token: cfg.join_token.clone(),
        };
        Agent {
            cfg,
            rt,
            docker_version: docker_version.into(),
            client,
            registry: TaskRegistry::new(),
        }
    }

    /// The registry of this agent's tasks (a handle sharing the agent's; take it before
    /// [`run`](Agent::run)). It stays readable after the agent stops.
    pub fn registry(&self) -> TaskRegistry {
        self.registry.clone()
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.cfg.retry, self.cfg.retry_cap)
    }

    fn state_path(&self) -> PathBuf {
        self.cfg.data_dir.join("agent.json")
    }

    fn load_state(&self) -> SavedState {
        std::fs::read(self.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice::<SavedState>(&b).ok())
            .filter(|s| s.cluster == self.cfg.cluster)
            .unwrap_or_default()
    }

    fn save_state(&self, s: &SavedState) -> Result<(), AgentError> {
        let path = self.state_path();
        let fail = |e: std::io::Error| AgentError::State {
            path: path.display().to_string(),
            error: e.to_string(),
        };
        std::fs::create_dir_all(&self.cfg.data_dir).map_err(fail)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(s).unwrap_or_default()).map_err(fail)?;
        std::fs::rename(&tmp, &path).map_err(fail)
    }

    fn registration(&self, existing: Option<String>) -> RegisterRequest {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        let mut attributes = vec![
            Attribute {
                name: "ecs.os-type".into(),
                value: Some("linux".into()),
                ..Attribute::default()
            },
            Attribute {
                name: "ecs.cpu-architecture".into(),
                value: Some(
                    if cfg!(target_arch = "aarch64") {
                        "arm64"
                    } else {
                        "x86_64"
                    }
                    .into(),
                ),
                ..Attribute::default()
            },
            Attribute {
                name: "ecs.availability-zone".into(),
                value: Some(self.cfg.availability_zone.clone()),
                ..Attribute::default()
            },
        ];
        for cap in [
            "com.amazonaws.ecs.capability.docker-remote-api.1.17",
            "com.amazonaws.ecs.capability.docker-remote-api.1.18",
            "com.amazonaws.ecs.capability.docker-remote-api.1.19",
            "com.amazonaws.ecs.capability.docker-remote-api.1.21",
            "com.amazonaws.ecs.capability.docker-remote-api.1.22",
            "com.amazonaws.ecs.capability.docker-remote-api.1.24",
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            "com.amazonaws.ecs.capability.docker-remote-api.1.29",
            "com.amazonaws.ecs.capability.docker-remote-api.1.32",
            "com.amazonaws.ecs.capability.logging-driver.json-file",
            "com.amazonaws.ecs.capability.logging-driver.syslog",
            "com.amazonaws.ecs.capability.logging-driver.journald",
            "com.amazonaws.ecs.capability.logging-driver.gelf",
            "com.amazonaws.ecs.capability.logging-driver.fluentd",
            "com.amazonaws.ecs.capability.logging-driver.none",
            // awslogs: written to json-file, shipped by the agent (see `awslogs`).
            "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "ecs.capability.container-health-check",
            "ecs.capability.container-ordering",
            "ecs.capability.docker-plugin.local",
        ] {
            attributes.push(Attribute {
                name: cap.into(),
                ..Attribute::default()
            });
        }
        if self.cfg.capacity != "ec2" {
            let isolation = if self.cfg.fargate_runtime.as_deref() == Some("runsc") {
                "gvisor"
            } else {
                "shared-kernel"
            };
            attributes.push(Attribute {
                name: "gantry.fargate-isolation".into(),
                value: Some(isolation.into()),
                ..Attribute::default()
            });
        }
        for (k, v) in &self.cfg.attributes {
            attributes.retain(|a| &a.name != k);
            attributes.push(Attribute {
                name: k.clone(),
                value: v.clone(),
                ..Attribute::default()
            });
        }
        RegisterRequest {
            engine_networks: Vec::new(),
            cluster: self.cfg.cluster.clone(),
            container_instance_arn: existing,
            total_resources: vec![
                int_resource("CPU", self.cfg.cpu.unwrap_or(cores * 1024)),
                int_resource(
                    "MEMORY",
                    self.cfg.memory_mib.unwrap_or_else(host_memory_mib),
                ),
                Resource {
                    name: Some("PORTS".into()),
                    r#type: Some("STRINGSET".into()),
                    string_set_value: Some(
                        self.cfg
                            .reserved_ports
                            .iter()
                            .map(|p| p.to_string())
                            .collect(),
                    ),
                    ..Resource::default()
                },
            ],
            version_info: VersionInfo {
                agent_version: Some(env!("CARGO_PKG_VERSION").into()),
                agent_hash: None,
                docker_version: Some(format!("DockerVersion: {}", self.docker_version)),
            },
            attributes,
            hostname: self.cfg.hostname.clone().unwrap_or_else(hostname),
            capacity: self.cfg.capacity.clone(),
            capacity_provider: self.cfg.capacity_provider.clone(),
        }
    }

    /// Registers (again), keeping the saved ARN when the server still knows it. Returns the
    /// instance's ARN and the installation to label containers with.
    async fn register(&self, fresh: bool) -> Result<(String, String), AgentError> {
        let saved = if fresh {
            SavedState::default()
        } else {
            self.load_state()
        };
        let mut req = self.registration(saved.container_instance_arn);
        // The ranges the engine's networks hold, so that awsvpc subnets avoid other
        // installations' (and the user's) networks.
        match self.rt.engine_networks().await {
            Ok(n) => req.engine_networks = n,
            Err(e) => tracing::warn!(error = %e, "could not list the engine's networks"),
        }
        let resp: RegisterResponse = self
            .client
            .post(REGISTER_PATH, &req, Duration::from_secs(30))
            .await?;
        let arn = resp
            .container_instance
            .container_instance_arn
            .unwrap_or_default();
        self.save_state(&SavedState {
            cluster: self.cfg.cluster.clone(),
            container_instance_arn: Some(arn.clone()),
        })?;
        // Servers from before installation ids name none: the ARN's region and account then.
        let installation = if resp.installation.is_empty() {
            installation_of(&arn)
        } else {
            resp.installation
        };
        Ok((arn, installation))
    }

    /// Runs until `shutdown` resolves. Tasks keep running after it returns.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), AgentError> {
        tokio::pin!(shutdown);
        let mut backoff = self.backoff();
        let (mut arn, mut installation) = loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                r = self.register(false) => match r {
                    Ok(registered) => break registered,
                    Err(AgentError::Refused(e)) => return Err(AgentError::Refused(e)),
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?delay, "registration failed; retrying");
                        tokio::select! {
                            _ = &mut shutdown => return Ok(()),
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        };
        backoff.reset();
        tracing::info!(instance = %arn, cluster = %self.cfg.cluster, "registered");
        let (report_tx, report_rx) = mpsc::unbounded_channel();
        let instance = Arc::new(Mutex::new(arn.clone()));
        let reporter = tokio::spawn(report_loop(
            Client {
                http: self.client.http.clone(),
                base: self.cfg.server.clone(),
                token: self.cfg.join_token.clone(),
            },
            instance.clone(),
            report_rx,
            self.backoff(),
        ));
        let shipping = tokio::spawn(awslogs::supervise(
            self.rt.clone(),
            self.registry.clone(),
            awslogs::Shipper {
                http: self.client.http.clone(),
                base: self.cfg.server.clone(),
                token: self.cfg.join_token.clone(),
                instance: instance.clone(),
                // Lines reach `aws logs tail` within a tenth of a second.
                poll: self.cfg.tick.min(Duration::from_millis(100)),
                retry: self.cfg.retry,
                retry_cap: self.cfg.retry_cap,
            },
        ));
        let (names, facts, endpoint) = match &self.cfg.task_endpoint {
            Some(te) => {
                endpoint::start(
                    te,
                    endpoint::Parts {
                        rt: self.rt.clone(),
                        registry: self.registry.clone(),
                        upstream: self.cfg.server.clone(),
                        http: self.client.http.clone(),
                        key_path: self.cfg.data_dir.join("endpoint.key"),
                        availability_zone: self.cfg.availability_zone.clone(),
                    },
                )
                .await
            }
            None => (None, None, None),
        };
        let pulled = Arc::new(Mutex::new(HashSet::new()));
        let mut adopted = self.adopt(&arn).await;
        let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
        let mut revision = 0u64;
        // The earliest expiry of the task credentials held: the server renews them at half
        // their life, so the agent asks again by then.
        let mut renew_by: Option<i64> = None;
        let mut first = true;
        let result = loop {
            let settings = Arc::new(WorkerSettings {
                owner: spec::Owner {
                    installation: installation.clone(),
                    instance_arn: arn.clone(),
                },
                pull_policy: self.cfg.pull_policy,
                default_stop_timeout: self.cfg.default_stop_timeout,
                tick: self.cfg.tick,
                cleanup_wait: self.cfg.cleanup_wait,
                fargate_runtime: self.cfg.fargate_runtime.clone(),
                endpoint: names.clone(),
                dns_servers: self.cfg.dns_servers.iter().map(|a| a.to_string()).collect(),
            });
            let wait = poll_wait(self.cfg.poll_wait, renew_by, unix_now());
            let req = PollRequest {
                container_instance_arn: arn.clone(),
                revision,
                wait_ms: wait.as_millis() as u64,
            };
            let polled: Result<PollResponse, AgentError> = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                r = self.client.post(POLL_PATH, &req, wait + Duration::from_secs(10)) => r,
            };
            match polled {
                Ok(resp) => {
                    backoff.reset();
                    revision = resp.revision;
                    renew_by = resp
                        .tasks
                        .iter()
                        .filter_map(|t| t.credentials.as_ref().map(|c| c.expiration))
                        .min();
                    if let Some(facts) = &facts {
                        if let Ok(mut f) = facts.write() {
                            f.tags = resp.instance_tags.clone();
                        }
                    }
                    let wanted: HashSet<String> = resp
                        .tasks
                        .iter()
                        .filter_map(|t| t.task.task_arn.clone())
                        .collect();
                    for a in resp.tasks {
                        let task_arn = a.task.task_arn.clone().unwrap_or_default();
                        match workers.get(&task_arn) {
                            Some(w) => {
                                w.desired.send_replace(a);
                            }
                            None => {
                                let (tx, rx) = watch::channel(a);
                                let found = adopted.remove(&task_arn).unwrap_or_default();
                                let worker = TaskWorker::new(
                                    self.rt.clone(),
                                    settings.clone(),
                                    pulled.clone(),
                                    rx,
                                    report_tx.clone(),
                                    self.registry.clone(),
                                    found,
                                );
                                workers.insert(
                                    task_arn,
                                    WorkerHandle {
                                        desired: tx,
                                        join: tokio::spawn(worker.run()),
                                    },
                                );
                            }
                        }
                    }
                    // A task the control plane no longer lists must not keep running here.
                    for (arn, w) in &workers {
                        if !wanted.contains(arn) && !w.join.is_finished() {
                            w.desired.send_if_modified(|a| {
                                if a.task.desired_status.as_deref() == Some("STOPPED") {
                                    return false;
                                }
                                a.task.desired_status = Some("STOPPED".into());
                                a.task.stopped_reason.get_or_insert_with(|| {
                                    "The control plane no longer lists this task.".into()
                                });
                                true
                            });
                        }
                    }
                    workers.retain(|arn, w| wanted.contains(arn) || !w.join.is_finished());
                    if first {
                        first = false;
                        // Containers of tasks the control plane no longer has: stop and remove.
                        for (task, containers) in adopted.drain() {
                            tracing::info!(%task, "removing containers of a task the control plane does not know");
                            task::reap(self.rt.as_ref(), containers, self.cfg.default_stop_timeout)
                                .await;
                        }
                    }
                }
                Err(AgentError::Refused(e))
                    if e.contains("deregistered") || e.contains("Unknown container instance") =>
                {
                    tracing::warn!(error = %e, "the instance is gone; registering again");
                    match self.register(true).await {
                        Ok((new, inst)) => {
                            installation = inst;
                            // Containers of the old registration belong to no task any more.
                            if let Ok(old) = self
                                .rt
                                .list(&[(spec::labels::INSTANCE, arn.as_str())])
                                .await
                            {
                                for (task, w) in workers.drain() {
                                    w.join.abort();
                                    self.registry.remove(&task);
                                }
                                task::reap(self.rt.as_ref(), old, self.cfg.default_stop_timeout)
                                    .await;
                            }
                            arn = new;
                            if let Ok(mut i) = instance.lock() {
                                *i = arn.clone();
                            }
                            revision = 0;
                        }
                        Err(e) => {
                            let delay = backoff.next_delay();
                            tracing::warn!(error = %e, retry_in = ?delay, "registration failed");
                            tokio::select! {
                                _ = &mut shutdown => break Ok(()),
                                _ = tokio::time::sleep(delay) => {}
                            }
                        }
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in = ?delay, "poll failed; tasks keep running, retrying");
                    tokio::select! {
                        _ = &mut shutdown => break Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        };
        reporter.abort();
        shipping.abort();
        if let Some(e) = endpoint {
            e.abort();
        }
        result
    }

    /// This instance's containers already on the host, by task ARN.
    async fn adopt(&self, arn: &str) -> HashMap<String, Vec<Observed>> {
        let mut by_task: HashMap<String, Vec<Observed>> = HashMap::new();
        match self.rt.list(&[(spec::labels::INSTANCE, arn)]).await {
            Ok(found) => {
                for o in found {
                    if let Some(t) = o.labels.get(spec::labels::TASK).cloned() {
                        by_task.entry(t).or_default().push(o);
                    }
                }
                if !by_task.is_empty() {
                    tracing::info!(
                        tasks = by_task.len(),
                        "re-adopting containers found on the host"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing containers failed"),
        }
        by_task
    }
}

/// The installation an instance ARN belongs to (its region and account).
fn installation_of(arn: &str) -> String {
    arn.split(":container-instance/")
        .next()
        .unwrap_or(arn)
        .to_string()
}

/// At most this many task reports per request.
const MAX_REPORT_BATCH: usize = 100;

/// Sends reports in batches; keeps the latest report per task until the server has it.
async fn report_loop(
    client: Client,
    instance: Arc<Mutex<String>>,
    mut rx: mpsc::UnboundedReceiver<TaskReport>,
    mut backoff: Backoff,
) {
    let mut pending: HashMap<String, TaskReport> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(r) => {
                    order.push(r.task_arn.clone());
                    pending.insert(r.task_arn.clone(), r);
                }
                None => return,
            }
        }
        while let Ok(r) = rx.try_recv() {
            if !pending.contains_key(&r.task_arn) {
                order.push(r.task_arn.clone());
            }
            pending.insert(r.task_arn.clone(), r);
        }
        // Bounded batches, so one request never outgrows the server's body limit.
        let tasks: Vec<TaskReport> = order
            .iter()
            .filter_map(|a| pending.get(a).cloned())
            .take(MAX_REPORT_BATCH)
            .collect();
        let arn = instance.lock().map(|i| i.clone()).unwrap_or_default();
        let req = ReportRequest {
            container_instance_arn: arn,
            tasks: tasks.clone(),
        };
        match client
            .post::<_, ReportResponse>(REPORT_PATH, &req, Duration::from_secs(30))
            .await
        {
            Ok(_) => {
                backoff.reset();
                // Drop what was sent unless a newer report arrived meanwhile.
                for t in tasks {
                    if pending.get(&t.task_arn) == Some(&t) {
                        pending.remove(&t.task_arn);
                    }
                }
                order.retain(|a| pending.contains_key(a));
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, pending = pending.len(), retry_in = ?delay, "report failed; will retry");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_come_back_in_time_to_renew_credentials() {
        let longest = Duration::from_secs(15);
        assert_eq!(poll_wait(longest, None, 100), longest);
        // 20 s left: ask again after 11 s, when less than half is left.
        assert_eq!(poll_wait(longest, Some(120), 100), Duration::from_secs(11));
        assert_eq!(poll_wait(longest, Some(10_000), 100), longest);
        assert_eq!(poll_wait(longest, Some(50), 100), Duration::from_secs(1));
    }
}
