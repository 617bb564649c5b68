//! One task on this host: a worker that converges the task's containers on what the control
//! plane wants, level-triggered, and reports what it sees.
//!
//! Start: pull images (by the pull policy), create task volumes, then create and start each
//! container once its `dependsOn` conditions hold (START, COMPLETE, SUCCESS, HEALTHY; links and
//! volumesFrom imply START). Run: an essential container's exit stops the task. Stop: containers
//! stop in reverse dependency order, each with SIGTERM and then SIGKILL after its stopTimeout.

use crate::registry::{ContainerEntry, TaskEntry, TaskNetwork, TaskRegistry};
use crate::runtime::{Binding, ContainerRuntime, Observed, Protocol};
use crate::spec::{self, Owner};
use gantry_api::agent::{AssignedTask, ContainerReport, TaskReport};
use gantry_api::model::{
    ContainerCondition, ContainerDefinition, HealthStatus, NetworkBinding, NetworkMode,
    TaskStopCode, TransportProtocol,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

/// When the agent pulls images (ECS_IMAGE_PULL_BEHAVIOR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull; if the pull fails, use a cached image when there is one.
    Default,
    /// Always pull; fail the task when the pull fails.
    Always,
    /// Pull only the first time this agent needs the image.
    Once,
    /// Use a local image when there is one; pull only when it is missing.
    PreferCached,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(PullPolicy::Default),
            "always" => Ok(PullPolicy::Always),
            "once" => Ok(PullPolicy::Once),
            "prefer-cached" => Ok(PullPolicy::PreferCached),
            _ => Err(format!(
                "unknown pull behavior {s:?}: use default, always, once or prefer-cached"
            )),
        }
    }
}

/// Timings and policies every task worker shares.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub owner: Owner,
    pub pull_policy: PullPolicy,
    /// SIGTERM→SIGKILL grace when a container sets no stopTimeout (ECS_CONTAINER_STOP_TIMEOUT).
    pub default_stop_timeout: Duration,
    /// How often a worker re-inspects its containers (health, exits missed by waiters).
    pub tick: Duration,
    /// How long the containers of a STOPPED task are kept before removal
    /// (ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION).
    pub cleanup_wait: Duration,
    /// The runtime FARGATE tasks' containers use (`runsc`: their own gVisor kernel).
    pub fargate_runtime: Option<String>,
    /// The task endpoint's names, when the agent serves it: containers are told where it is.
    pub endpoint: Option<crate::endpoint::names::Names>,
    /// DNS servers for containers whose definition names none.
    pub dns_servers: Vec<String>,
}

/// Images this agent pulled (for the `once` policy).
pub type PulledImages = Arc<Mutex<HashSet<String>>>;

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or_default()
}

struct ContainerRun {
    def: ContainerDefinition,
    name: String,
    id: Option<String>,
    observed: Option<Observed>,
    /// A failure to report for this container (pull, create or start error).
    reason: Option<String>,
    waiter: bool,
}

impl ContainerRun {
    fn essential(&self) -> bool {
        self.def.essential.unwrap_or(true)
    }
    fn started(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| o.started || o.running)
    }
    fn running(&self) -> bool {
        self.observed.as_ref().is_some_and(|o| o.running)
    }
    fn exit_code(&self) -> Option<i64> {
        self.observed.as_ref().and_then(|o| o.exit_code)
    }
    fn health(&self) -> Option<&str> {
        self.observed.as_ref().and_then(|o| o.health.as_deref())
    }
}

/// A task's worker.
pub struct TaskWorker<R: ContainerRuntime> {
    rt: Arc<R>,
    settings: Arc<WorkerSettings>,
    pulled_images: PulledImages,
    desired: watch::Receiver<AssignedTask>,
    /// The assignment being worked on (the last one taken from `desired`).
    assignment: Arc<AssignedTask>,
    reports: mpsc::UnboundedSender<TaskReport>,
    registry: TaskRegistry,
    wake: Arc<Notify>,
    task_arn: String,
    containers: Vec<ContainerRun>,
    pulled: bool,
    status: &'static str,
    stop: Option<(TaskStopCode, String)>,
    pull_started_at: Option<f64>,
    pull_stopped_at: Option<f64>,
    started_at: Option<f64>,
    execution_stopped_at: Option<f64>,
    pending_since: Instant,
    last_report: Option<TaskReport>,
    /// An awsvpc task's pause container (holding its network namespace).
    pause: Option<String>,
    /// A FARGATE task's cgroup, with the task's cpu and memory limits.
    cgroup: Option<crate::cgroups::TaskCgroup>,
    /// The security group rules installed for an awsvpc task, and its address.
    firewall: Option<(String, gantry_api::agent::Firewall)>,
}

impl<R: ContainerRuntime> TaskWorker<R> {
    /// A worker for `desired`; `adopted` are containers of this task found on the host (after an
    /// agent restart), so that nothing is started twice. The task enters `registry` at once
    /// (with its adopted containers) and leaves it when the worker ends after cleanup.
    pub fn new(
        rt: Arc<R>,
        settings: Arc<WorkerSettings>,
        pulled_images: PulledImages,
        desired: watch::Receiver<AssignedTask>,
        reports: mpsc::UnboundedSender<TaskReport>,
        registry: TaskRegistry,
        adopted: Vec<Observed>,
    ) -> Self {
        let a = desired.borrow().clone();
        let mut containers: Vec<ContainerRun> = a
            .task_definition
            .container_definitions
            .iter()
            .flatten()
            .map(|def| ContainerRun {
                name: def.name.clone().unwrap_or_default(),
                def: def.clone(),
                id: None,
                observed: None,
                reason: None,
                waiter: false,
            })
            .collect();
        let any_adopted = !adopted.is_empty();
        let pause = adopted
            .iter()
            .find(|o| {
                o.labels.get(spec::labels::CONTAINER).map(String::as_str)
                    == Some(spec::PAUSE_CONTAINER)
            })
            .map(|o| o.id.clone());
        for o in adopted {
            if let Some(c) = containers
                .iter_mut()
                .find(|c| o.labels.get(spec::labels::CONTAINER) == Some(&c.name))
            {
                c.id = Some(o.id.clone());
                c.observed = Some(o);
            }
        }
        // An adopted FARGATE task keeps the cgroup the agent made before its restart.
        let cgroup = (any_adopted
            && a.task.launch_type == Some(gantry_api::model::LaunchType::Fargate))
        .then(|| {
            crate::cgroups::existing(
                rt.cgroup_driver(),
                spec::task_id(a.task.task_arn.as_deref().unwrap_or_default()),
            )
        })
        .flatten();
        let status = match a.task.last_status.as_deref() {
            Some("RUNNING") if any_adopted => "RUNNING",
            _ => "PENDING",
        };
        let worker = TaskWorker {
            rt,
            settings,
            pulled_images,
            task_arn: a.task.task_arn.clone().unwrap_or_default(),
            desired,
            assignment: Arc::new(a.clone()),
            reports,
            registry,
            wake: Arc::new(Notify::new()),
            containers,
            pulled: any_adopted,
            status,
            stop: None,
            pull_started_at: a.task.pull_started_at,
            pull_stopped_at: a.task.pull_stopped_at,
            started_at: a.task.started_at,
            execution_stopped_at: None,
            pending_since: Instant::now(),
            last_report: None,
            pause,
            cgroup,
            firewall: None,
        };
        worker.publish();
        worker
    }

    /// Drives the task until it has stopped and its containers are cleaned up; then the task
    /// leaves the registry. (When the agent shuts down, the worker returns at once and the
    /// task, still running, stays.)
    pub async fn run(mut self) {
        loop {
            let assigned = Arc::new(self.desired.borrow_and_update().clone());
            self.assignment = assigned.clone();
            self.step(&assigned).await;
            self.report();
            if self.status == "STOPPED" {
                break;
            }
            tokio::select! {
                r = self.desired.changed() => {
                    if r.is_err() {
                        // The agent is shutting down; tasks keep running.
                        return;
                    }
                }
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.tick) => {}
            }
        }
        tokio::time::sleep(self.settings.cleanup_wait).await;
        self.cleanup().await;
        self.registry.remove(&self.task_arn);
    }

    fn fail(&mut self, code: TaskStopCode, reason: String) {
        if self.stop.is_none() {
            tracing::info!(task = %self.task_arn, %reason, "stopping task");
            self.stop = Some((code, reason));
        }
    }

    async fn step(&mut self, a: &AssignedTask) {
        if self.stop.is_none() && a.task.desired_status.as_deref() == Some("STOPPED") {
            let code = a.task.stop_code.unwrap_or(TaskStopCode::UserInitiated);
            let reason = a
                .task
                .stopped_reason
                .clone()
                .unwrap_or_else(|| "Task stopped".to_string());
            self.stop = Some((code, reason));
        }
        self.observe().await;
        if self.stop.is_none() {
            if let Some(c) = self
                .containers
                .iter()
                .find(|c| c.essential() && c.exit_code().is_some())
            {
                tracing::info!(task = %self.task_arn, container = %c.name, exit = ?c.exit_code(), "essential container exited");
                self.fail(
                    TaskStopCode::EssentialContainerExited,
                    "Essential container in task exited".to_string(),
                );
            }
        }
        if self.stop.is_some() {
            self.stop_all().await;
            return;
        }
        if !self.pulled {
            self.pull(a).await;
            if self.stop.is_some() {
                self.stop_all().await;
                return;
            }
        }
        self.sync_firewall(a).await;
        self.start_ready(a).await;
        if self.stop.is_some() {
            self.stop_all().await;
            return;
        }
        if self.status == "PENDING" && self.containers.iter().all(|c| c.started()) {
            self.status = "RUNNING";
            self.started_at.get_or_insert_with(now_secs);
        }
    }

    /// Re-inspects every container that exists.
    async fn observe(&mut self) {
        for c in &mut self.containers {
            let Some(id) = c.id.clone() else { continue };
            match self.rt.inspect(&id).await {
                Ok(Some(o)) => {
                    if o.running && !c.waiter {
                        c.waiter = true;
                        let (rt, wake, id) = (self.rt.clone(), self.wake.clone(), id.clone());
                        tokio::spawn(async move {
                            rt.wait(&id).await;
                            wake.notify_one();
                        });
                    }
                    // Docker sees OOM kills in the container's own cgroup; a FARGATE task's limit is
                    // on the task's cgroup, whose counter tells.
                    let task_oom = !o.running
                        && o.exit_code == Some(137)
                        && self.cgroup.as_ref().is_some_and(|cg| cg.oom_kills() > 0);
                    if (o.oom_killed || task_oom) && c.reason.is_none() {
                        c.reason = Some(
                            "OutOfMemoryError: Container killed due to memory usage".to_string(),
                        );
                    }
                    if !o.running {
                        c.waiter = false;
                    }
                    c.observed = Some(o);
                }
                Ok(None) => {
                    // Removed behind our back: it is not running any more.
                    let mut o = c.observed.clone().unwrap_or_default();
                    o.running = false;
                    o.exit_code = o.exit_code.or(Some(137));
                    o.started = true;
                    c.observed = Some(o);
                    c.reason.get_or_insert_with(|| {
                        "The container was removed outside gantry.".to_string()
                    });
                }
                Err(e) => {
                    tracing::warn!(task = %self.task_arn, container = %c.name, error = %e, "inspect failed")
                }
            }
        }
    }

    async fn pull(&mut self, a: &AssignedTask) {
        // The server resolves secrets as the execution role before the task reaches us; a
        // refusal fails the start, as ECS's resource initialisation does.
        if let Some(reason) = &a.secrets_error {
            self.pull_stopped_at = Some(now_secs());
            self.fail(TaskStopCode::TaskFailedToStart, reason.clone());
            return;
        }
        self.pull_started_at.get_or_insert_with(now_secs);
        let images: Vec<String> = {
            let mut seen = Vec::new();
            for c in &self.containers {
                let img = c.def.image.clone().unwrap_or_default();
                if !seen.contains(&img) {
                    seen.push(img);
                }
            }
            seen
        };
        for image in images {
            // The registry credentials of a container that runs this image, if any has them.
            let auth = self
                .containers
                .iter()
                .filter(|c| c.def.image.as_deref() == Some(image.as_str()))
                .find_map(|c| a.secrets.get(&c.name)?.registry_auth.clone());
            if let Err(e) = self.pull_one(&image, auth.as_ref()).await {
                let reason = format!("CannotPullContainerError: pull image {image}: {e}");
                for c in self
                    .containers
                    .iter_mut()
                    .filter(|c| c.def.image.as_deref() == Some(image.as_str()))
                {
                    c.reason = Some(reason.clone());
                }
                self.pull_stopped_at = Some(now_secs());
                self.fail(TaskStopCode::TaskFailedToStart, reason);
                return;
            }
        }
        for v in spec::volumes(a) {
            if let Err(e) = self
                .rt
                .ensure_volume(&v.name, v.driver.as_deref(), &v.opts, &v.labels)
                .await
            {
                self.fail(
                    TaskStopCode::TaskFailedToStart,
                    format!("CannotCreateVolumeError: {}: {e}", v.name),
                );
                return;
            }
        }
        if a.task.launch_type == Some(gantry_api::model::LaunchType::Fargate) {
            let cpu = a.task.cpu.as_deref().and_then(|c| c.parse::<u64>().ok());
            let mem = a.task.memory.as_deref().and_then(|m| m.parse::<u64>().ok());
            match crate::cgroups::create(
                self.rt.cgroup_driver(),
                spec::task_id(&self.task_arn),
                cpu,
                mem,
            ) {
                Ok(cg) => self.cgroup = Some(cg),
                Err(e) => {
                    self.fail(
                        TaskStopCode::TaskFailedToStart,
                        format!("CannotCreateTaskCgroupError: {e}"),
                    );
                    return;
                }
            }
        }
        if let Some(eni) = spec::eni(a, &self.settings.owner) {
            match self.ensure_pause(a, &eni).await {
                Ok(id) => self.pause = Some(id),
                Err(e) => {
                    self.fail(
                        TaskStopCode::TaskFailedToStart,
                        format!("CannotCreateNetworkInterfaceError: {e}"),
                    );
                    return;
                }
            }
        }
        self.pull_stopped_at = Some(now_secs());
        self.pulled = true;
    }

    /// The task's network namespace: the subnet's network, and a pause container on it with the
    /// task's address (reused when it exists already).
    async fn ensure_pause(&self, a: &AssignedTask, eni: &spec::Eni) -> Result<String, String> {
        let image = self.rt.ensure_pause_image().await.map_err(|e| e.0)?;
        self.rt
            .ensure_network(
                &eni.network,
                &eni.subnet,
                &eni.gateway,
                &self.settings.owner.installation,
            )
            .await
            .map_err(|e| e.0)?;
        let found = self
            .rt
            .list(&[
                (spec::labels::TASK, self.task_arn.as_str()),
                (spec::labels::CONTAINER, spec::PAUSE_CONTAINER),
            ])
            .await
            .map_err(|e| e.0)?;
        let id = match found.into_iter().next() {
            Some(o) if o.running => return Ok(o.id),
            Some(o) => o.id,
            None => {
                let mut spec = spec::pause(a, &self.settings.owner, eni, &image);
                spec::default_dns(&mut spec, &self.settings.dns_servers);
                spec.cgroup_parent = self.cgroup.as_ref().map(|c| c.parent.clone());
                self.rt.create(&spec).await.map_err(|e| e.0)?
            }
        };
        self.rt.start(&id).await.map_err(|e| e.0)?;
        Ok(id)
    }

    async fn pull_one(
        &self,
        image: &str,
        auth: Option<&gantry_api::agent::RegistryAuth>,
    ) -> Result<(), String> {
        let present = self.rt.image_present(image).await.map_err(|e| e.0)?;
        let pulled_before = self
            .pulled_images
            .lock()
            .map(|s| s.contains(image))
            .unwrap_or(false);
        let must_pull = match self.settings.pull_policy {
            PullPolicy::Always | PullPolicy::Default => true,
            PullPolicy::Once => !(pulled_before && present),
            PullPolicy::PreferCached => !present,
        };
        if !must_pull {
            return Ok(());
        }
        match self.rt.pull(image, auth).await {
            Ok(()) => {
                if let Ok(mut s) = self.pulled_images.lock() {
                    s.insert(image.to_string());
                }
                Ok(())
            }
            Err(e) if self.settings.pull_policy == PullPolicy::Default && present => {
                tracing::warn!(%image, error = %e, "pull failed; using the cached image");
                Ok(())
            }
            Err(e) => Err(e.0),
        }
    }

    /// Keeps the task's security group rules in step with what the control plane sends.
    async fn sync_firewall(&mut self, a: &AssignedTask) {
        let Some(eni) = spec::eni(a, &self.settings.owner) else {
            return;
        };
        let want = a.firewall.clone();
        let have = self.firewall.as_ref().map(|(_, f)| f.clone());
        if want == have {
            return;
        }
        let id = spec::task_id(&self.task_arn).to_string();
        tracing::debug!(task = %self.task_arn, ip = %eni.ip, rules = ?want, "applying security groups");
        match self.rt.set_firewall(&id, &eni.ip, want.as_ref()).await {
            Ok(()) => self.firewall = want.map(|f| (eni.ip.clone(), f)),
            Err(e) => {
                tracing::warn!(task = %self.task_arn, error = %e, "applying the security groups failed")
            }
        }
    }

    /// Whether container `i`'s dependencies allow it to start now; `Err` when they never will.
    fn ready(&self, i: usize) -> Result<bool, String> {
        let c = &self.containers[i];
        for (dep, cond) in spec::dependencies(&c.def) {
            let Some(d) = self.containers.iter().find(|x| x.name == dep) else {
                continue;
            };
            let ok = match cond {
                ContainerCondition::Start => d.started(),
                ContainerCondition::Complete => d.exit_code().is_some(),
                ContainerCondition::Success => match d.exit_code() {
                    Some(0) => true,
                    Some(code) => {
                        return Err(format!(
                            "dependency {dep} exited with code {code}, not 0 (SUCCESS)"
                        ))
                    }
                    None => false,
                },
                ContainerCondition::Healthy => match d.health() {
                    Some("healthy") => true,
                    Some("unhealthy") => {
                        return Err(format!("dependency {dep} is unhealthy (HEALTHY)"))
                    }
                    _ if d.exit_code().is_some() => {
                        return Err(format!("dependency {dep} exited before it was healthy"))
                    }
                    _ => false,
                },
            };
            if !ok {
                if let Some(t) = c.def.start_timeout.filter(|t| *t > 0) {
                    if self.pending_since.elapsed() > Duration::from_secs(t as u64) {
                        return Err(format!(
                            "timed out after {t} s waiting for dependency {dep}"
                        ));
                    }
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn start_ready(&mut self, a: &AssignedTask) {
        for i in 0..self.containers.len() {
            if self.containers[i].id.is_some() {
                continue;
            }
            match self.ready(i) {
                Ok(false) => continue,
                Err(why) => {
                    let name = self.containers[i].name.clone();
                    self.containers[i].reason = Some(format!("DependencyError: {why}"));
                    self.fail(
                        TaskStopCode::TaskFailedToStart,
                        format!("Container {name}: {why}"),
                    );
                    return;
                }
                Ok(true) => {}
            }
            let mut spec = spec::container(a, &self.containers[i].def, &self.settings.owner);
            spec::default_dns(&mut spec, &self.settings.dns_servers);
            if let Some(names) = &self.settings.endpoint {
                spec::set_endpoint_env(&mut spec.env, names.env(a, i));
            }
            spec.cgroup_parent = self.cgroup.as_ref().map(|c| c.parent.clone());
            if a.task.launch_type == Some(gantry_api::model::LaunchType::Fargate) {
                spec.runtime = self.settings.fargate_runtime.clone();
            }
            let name = self.containers[i].name.clone();
            let id = match self.rt.create(&spec).await {
                Ok(id) => id,
                Err(e) => {
                    let reason = format!("CannotCreateContainerError: {e}");
                    self.containers[i].reason = Some(reason.clone());
                    self.fail(
                        TaskStopCode::TaskFailedToStart,
                        format!("Container {name}: {reason}"),
                    );
                    return;
                }
            };
            self.containers[i].id = Some(id.clone());
            if let Err(e) = self.rt.start(&id).await {
                let reason = format!("CannotStartContainerError: {e}");
                self.containers[i].reason = Some(reason.clone());
                self.fail(
                    TaskStopCode::TaskFailedToStart,
                    format!("Container {name}: {reason}"),
                );
                return;
            }
            tracing::debug!(task = %self.task_arn, container = %name, "started");
            if let Ok(Some(o)) = self.rt.inspect(&id).await {
                self.containers[i].observed = Some(o);
            }
            self.publish();
            let (rt, wake) = (self.rt.clone(), self.wake.clone());
            self.containers[i].waiter = true;
            tokio::spawn(async move {
                rt.wait(&id).await;
                wake.notify_one();
            });
        }
    }

    /// Stops running containers in reverse dependency order: a container stops once no
    /// running container depends on it.
    async fn stop_all(&mut self) {
        if self.status != "STOPPING" && self.status != "STOPPED" {
            self.status = "STOPPING";
            self.report();
        }
        loop {
            let running: Vec<usize> = (0..self.containers.len())
                .filter(|&i| self.containers[i].running())
                .collect();
            if running.is_empty() {
                break;
            }
            let depended_on = |i: usize| {
                let name = &self.containers[i].name;
                running.iter().any(|&j| {
                    j != i
                        && spec::dependencies(&self.containers[j].def)
                            .iter()
                            .any(|(d, _)| d == name)
                })
            };
            let mut batch: Vec<usize> = running
                .iter()
                .copied()
                .filter(|&i| !depended_on(i))
                .collect();
            if batch.is_empty() {
                batch = running.clone();
            }
            let stops = batch.iter().map(|&i| {
                let c = &self.containers[i];
                let timeout = c
                    .def
                    .stop_timeout
                    .map(|t| t.max(0) as u32)
                    .unwrap_or(self.settings.default_stop_timeout.as_secs() as u32);
                let id = c.id.clone().unwrap_or_default();
                let rt = self.rt.clone();
                async move { rt.stop(&id, timeout).await }
            });
            for r in futures_util::future::join_all(stops).await {
                if let Err(e) = r {
                    tracing::warn!(task = %self.task_arn, error = %e, "stop failed");
                }
            }
            let before = running.len();
            self.observe().await;
            if (0..self.containers.len())
                .filter(|&i| self.containers[i].running())
                .count()
                >= before
            {
                // Nothing stopped; try again on the next step rather than spin.
                return;
            }
        }
        if let Some(p) = &self.pause {
            if let Err(e) = self.rt.stop(p, 1).await {
                tracing::warn!(task = %self.task_arn, error = %e, "stopping the pause container failed");
            }
        }
        // The address goes back to the subnet: so do its rules.
        if let Some((ip, _)) = self.firewall.take() {
            let id = spec::task_id(&self.task_arn).to_string();
            if let Err(e) = self.rt.set_firewall(&id, &ip, None).await {
                tracing::warn!(task = %self.task_arn, error = %e, "removing the security group rules failed");
            }
        }
        self.status = "STOPPED";
        self.execution_stopped_at.get_or_insert_with(now_secs);
    }

    fn task_health(&self) -> HealthStatus {
        let checked: Vec<&ContainerRun> = self
            .containers
            .iter()
            .filter(|c| c.essential() && c.def.health_check.is_some())
            .collect();
        if checked.iter().any(|c| c.health() == Some("unhealthy")) {
            HealthStatus::Unhealthy
        } else if !checked.is_empty() && checked.iter().all(|c| c.health() == Some("healthy")) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unknown
        }
    }

    fn container_status(&self, c: &ContainerRun) -> &'static str {
        if c.running() {
            "RUNNING"
        } else if c.exit_code().is_some() || self.status == "STOPPED" {
            "STOPPED"
        } else {
            "PENDING"
        }
    }

    fn container_health(c: &ContainerRun) -> Option<HealthStatus> {
        c.def.health_check.as_ref().map(|_| match c.health() {
            Some("healthy") => HealthStatus::Healthy,
            Some("unhealthy") => HealthStatus::Unhealthy,
            _ => HealthStatus::Unknown,
        })
    }

    fn container_reason(c: &ContainerRun) -> Option<String> {
        c.reason
            .clone()
            .or_else(|| c.observed.as_ref().and_then(|o| o.error.clone()))
    }

    fn container_report(&self, c: &ContainerRun, host_mode: bool) -> ContainerReport {
        let last_status = self.container_status(c);
        let mut bindings: Vec<NetworkBinding> = c
            .observed
            .iter()
            .flat_map(|o| o.bindings.iter())
            .map(|b| NetworkBinding {
                bind_ip: Some(b.host_ip.clone()),
                container_port: Some(i32::from(b.container_port)),
                host_port: Some(i32::from(b.host_port)),
                protocol: Some(match b.protocol {
                    crate::runtime::Protocol::Udp => TransportProtocol::Udp,
                    crate::runtime::Protocol::Tcp => TransportProtocol::Tcp,
                }),
                ..NetworkBinding::default()
            })
            .collect();
        if host_mode && c.started() {
            bindings = c
                .def
                .port_mappings
                .iter()
                .flatten()
                .map(|pm| NetworkBinding {
                    bind_ip: Some("0.0.0.0".into()),
                    container_port: pm.container_port,
                    host_port: pm.host_port.or(pm.container_port),
                    protocol: pm.protocol.or(Some(TransportProtocol::Tcp)),
                    ..NetworkBinding::default()
                })
                .collect();
        }
        ContainerReport {
            name: c.name.clone(),
            runtime_id: c.id.clone(),
            last_status: last_status.to_string(),
            exit_code: c.exit_code().map(|e| e as i32),
            reason: Self::container_reason(c),
            network_bindings: bindings,
            health_status: Self::container_health(c),
            image_digest: c.observed.as_ref().and_then(|o| o.image_id.clone()),
        }
    }

    /// The registry's view of a container: what its report says, in the runtime's terms.
    fn container_entry(&self, c: &ContainerRun, host_mode: bool) -> ContainerEntry {
        let bindings = if host_mode && c.started() {
            // Host mode publishes nothing through Docker: the container holds the ports itself.
            c.def
                .port_mappings
                .iter()
                .flatten()
                .filter_map(|pm| {
                    let container_port = u16::try_from(pm.container_port?).ok()?;
                    let host_port = pm
                        .host_port
                        .and_then(|h| u16::try_from(h).ok())
                        .filter(|h| *h != 0)
                        .unwrap_or(container_port);
                    Some(Binding {
                        container_port,
                        protocol: if pm.protocol == Some(TransportProtocol::Udp) {
                            Protocol::Udp
                        } else {
                            Protocol::Tcp
                        },
                        host_ip: "0.0.0.0".into(),
                        host_port,
                    })
                })
                .collect()
        } else {
            c.observed
                .as_ref()
                .map(|o| o.bindings.clone())
                .unwrap_or_default()
        };
        ContainerEntry {
            name: c.name.clone(),
            id: c.id.clone(),
            docker_name: spec::docker_name(&self.assignment, &c.name),
            last_status: self.container_status(c).to_string(),
            exit_code: c.exit_code(),
            health: Self::container_health(c),
            reason: Self::container_reason(c),
            image_digest: c.observed.as_ref().and_then(|o| o.image_id.clone()),
            ips: c
                .observed
                .as_ref()
                .filter(|o| o.running)
                .map(|o| o.ips.clone())
                .unwrap_or_default(),
            bindings,
        }
    }

    /// Writes the task's current state into the registry.
    fn publish(&self) {
        let host_mode = self.assignment.task_definition.network_mode == Some(NetworkMode::Host);
        let containers: Vec<ContainerEntry> = self
            .containers
            .iter()
            .map(|c| self.container_entry(c, host_mode))
            .collect();
        let eni = spec::eni(&self.assignment, &self.settings.owner);
        let host_ports = TaskEntry::host_ports_of(containers.iter().flat_map(|c| &c.bindings));
        self.registry.upsert(TaskEntry {
            task_arn: self.task_arn.clone(),
            assignment: self.assignment.clone(),
            last_status: self.status.to_string(),
            health: self.task_health(),
            stop: self.stop.clone(),
            started_at: self.started_at,
            containers,
            network: TaskNetwork {
                ipv4: eni.as_ref().map(|e| e.ip.clone()),
                mac: eni.as_ref().map(|e| e.mac.clone()),
                network: eni.map(|e| e.network),
                pause_container: self.pause.clone(),
            },
            host_ports,
        });
    }

    /// Sends the task's state if it changed since the last report, and records it in the
    /// registry.
    fn report(&mut self) {
        self.publish();
        let host_mode =
            self.desired.borrow().task_definition.network_mode == Some(NetworkMode::Host);
        let r = TaskReport {
            task_arn: self.task_arn.clone(),
            last_status: self.status.to_string(),
            stop_code: self.stop.as_ref().map(|s| s.0),
            stopped_reason: self.stop.as_ref().map(|s| s.1.clone()),
            health_status: Some(self.task_health()),
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            started_at: self.started_at,
            execution_stopped_at: self.execution_stopped_at,
            containers: self
                .containers
                .iter()
                .map(|c| self.container_report(c, host_mode))
                .collect(),
        };
        if self.last_report.as_ref() != Some(&r) {
            let _ = self.reports.send(r.clone());
            self.last_report = Some(r);
        }
    }

    async fn cleanup(&mut self) {
        for c in &self.containers {
            if let Some(id) = &c.id {
                if let Err(e) = self.rt.remove(id).await {
                    tracing::warn!(task = %self.task_arn, error = %e, "removing a container failed");
                }
            }
        }
        if let Some(p) = &self.pause {
            let _ = self.rt.remove(p).await;
        }
        if let Some(cg) = &self.cgroup {
            cg.remove();
        }
        let a = self.desired.borrow().clone();
        for v in spec::volumes(&a).into_iter().filter(|v| v.task_scoped) {
            let _ = self.rt.remove_volume(&v.name).await;
        }
        tracing::debug!(task = %self.task_arn, "cleaned up");
    }
}

/// Stops and removes containers of a task the control plane no longer knows (found on the host
/// after a restart).
pub async fn reap<R: ContainerRuntime>(rt: &R, containers: Vec<Observed>, stop_timeout: Duration) {
    let mut by_id: HashMap<String, Observed> = HashMap::new();
    for c in containers {
        by_id.insert(c.id.clone(), c);
    }
    let mut tasks = std::collections::BTreeSet::new();
    for (id, c) in by_id {
        if c.running {
            let _ = rt.stop(&id, stop_timeout.as_secs() as u32).await;
        }
        let _ = rt.remove(&id).await;
        if let Some(t) = c.labels.get(spec::labels::TASK) {
            tasks.insert(t.clone());
        }
    }
    // And a FARGATE task's cgroup, once its containers are gone.
    for t in tasks {
        if let Some(cg) = crate::cgroups::existing(rt.cgroup_driver(), spec::task_id(&t)) {
            cg.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimRuntime;

    async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        for _ in 0..500 {
            if let Some(v) = f() {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn a_worker_keeps_its_task_in_the_registry_until_cleanup() {
        let arn = "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef";
        let a = AssignedTask {
            task: serde_json::from_value(
                serde_json::json!({"taskArn": arn, "desiredStatus": "RUNNING"}),
            )
            .unwrap(),
            task_definition: serde_json::from_value(serde_json::json!({
                "family": "f", "revision": 1, "containerDefinitions": [
                    {"name": "web", "image": "img", "portMappings": [{"containerPort": 80}]},
                    {"name": "side", "image": "img"}]}))
            .unwrap(),
            firewall: None,
            secrets: Default::default(),
            secrets_error: None,
            credentials: None,
        };
        let settings = Arc::new(WorkerSettings {
            owner: Owner {
                installation: "i".into(),
                instance_arn: "arn:ci".into(),
            },
            pull_policy: PullPolicy::PreferCached,
            default_stop_timeout: Duration::from_secs(1),
            tick: Duration::from_millis(10),
            cleanup_wait: Duration::from_millis(10),
            fargate_runtime: None,
            endpoint: None,
            dns_servers: Vec::new(),
        });
        let (desired, rx) = watch::channel(a);
        let (reports, _seen) = mpsc::unbounded_channel();
        let registry = TaskRegistry::new();
        let worker = TaskWorker::new(
            Arc::new(SimRuntime::new()),
            settings,
            PulledImages::default(),
            rx,
            reports,
            registry.clone(),
            Vec::new(),
        );
        // In the registry from the start.
        let e = registry.get(arn).unwrap();
        assert_eq!((e.last_status.as_str(), e.containers.len()), ("PENDING", 2));
        assert_eq!(e.assignment.task_definition.family.as_deref(), Some("f"));
        assert!(e.container_ids().is_empty());
        let done = tokio::spawn(worker.run());

        let e = eventually("the task to run", || {
            registry.get(arn).filter(|e| e.last_status == "RUNNING")
        })
        .await;
        let ids = e.container_ids();
        assert_eq!(ids.len(), 2);
        let web = e.container("web").unwrap();
        assert_eq!(web.last_status, "RUNNING");
        assert_eq!(web.bindings.len(), 1);
        assert_eq!(e.host_ports.len(), 1);
        assert_eq!(e.host_ports[0].port, web.bindings[0].host_port);
        assert_eq!(
            registry.by_ip(&web.ips[0]).map(|t| t.task_arn).as_deref(),
            Some(arn)
        );
        assert_eq!(
            registry.by_container_id(&ids["side"]).unwrap().1.as_deref(),
            Some("side")
        );

        desired.send_modify(|a| a.task.desired_status = Some("STOPPED".into()));
        eventually("the worker to end", || done.is_finished().then_some(())).await;
        assert!(registry.get(arn).is_none(), "gone after cleanup");
        assert!(registry.by_container_id(&ids["web"]).is_none());
    }
}
