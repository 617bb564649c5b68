//! A simulated container runtime: hollow containers that "run" until stopped, kept in memory.
//!
//! Like Kubernetes' hollow nodes, it lets the real agent code (registration, polling, task
//! workers, reports) drive thousands of instances from one process without Docker, for scale
//! work and the scheduler's end-to-end tests. It is never the default, and no test of real
//! container behaviour uses it. It is also the in-repo fake of [`ContainerRuntime`].
//!
//! Hollow containers write nothing unless their environment says what: the lines of
//! `GANTRY_SIM_STDOUT` and then those of `GANTRY_SIM_STDERR` appear in their logs each time
//! they start. Their resource usage is synthetic but consistent: 1% of a CPU and a fixed 8 MiB
//! (within their memory limit) while they run, 1000 bytes in and 500 out per second of running.

use crate::runtime::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The environment variable whose lines a hollow container writes to stdout when it starts.
pub const STDOUT_ENV: &str = "GANTRY_SIM_STDOUT";
/// The environment variable whose lines a hollow container writes to stderr when it starts.
pub const STDERR_ENV: &str = "GANTRY_SIM_STDERR";

/// The memory limit hollow containers without one report.
const HOST_MEMORY: u64 = 2 << 30;
/// The memory a running hollow container uses (or its limit, when lower).
const USAGE: u64 = 8 << 20;

/// A hollow container's output and running time, shared with its log and stats streams.
#[derive(Default)]
struct Output {
    state: Mutex<OutputState>,
    changed: Notify,
}

#[derive(Default)]
struct OutputState {
    lines: Vec<LogLine>,
    running: bool,
    /// When the current run began.
    since: Option<Instant>,
    /// Nanoseconds of earlier runs.
    ran_before_ns: u64,
}

impl OutputState {
    fn ran_ns(&self) -> u64 {
        let now = self
            .since
            .map(|t| u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.ran_before_ns.saturating_add(now)
    }
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, spec: &ContainerSpec) {
        let mut st = self.lock();
        if st.running {
            return;
        }
        st.running = true;
        st.since = Some(Instant::now());
        let now = now_ns();
        for (var, stream) in [
            (STDOUT_ENV, LogSource::Stdout),
            (STDERR_ENV, LogSource::Stderr),
        ] {
            let prefix = format!("{var}=");
            for text in spec.env.iter().filter_map(|e| e.strip_prefix(&prefix)) {
                for line in text.lines() {
                    st.lines.push(LogLine {
                        stream,
                        timestamp_ns: Some(now),
                        line: line.as_bytes().to_vec(),
                    });
                }
            }
        }
        drop(st);
        self.changed.notify_waiters();
    }

    fn stop(&self) {
        let mut st = self.lock();
        if st.running {
            st.ran_before_ns = st.ran_ns();
            st.since = None;
            st.running = false;
        }
        drop(st);
        self.changed.notify_waiters();
    }
}

struct Hollow {
    spec: ContainerSpec,
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    bindings: Vec<Binding>,
    /// A bridge container's address (it has it while it runs).
    ip: Option<String>,
    stopped: Arc<Notify>,
    output: Arc<Output>,
}

/// An in-memory "engine" of hollow containers.
pub struct SimRuntime {
    containers: Mutex<HashMap<String, Hollow>>,
    next_id: AtomicU64,
    next_port: AtomicU64,
    stats_interval: Duration,
}

impl Default for SimRuntime {
    fn default() -> Self {
        SimRuntime {
            containers: Mutex::default(),
            next_id: AtomicU64::new(0),
            next_port: AtomicU64::new(0),
            stats_interval: Duration::from_secs(1),
        }
    }
}

/// One synthetic sample of a hollow container.
fn sample(st: &OutputState, memory_mib: Option<i64>) -> Stats {
    let online_cpus = std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let ran = st.ran_ns();
    let limit = memory_mib
        .and_then(|m| u64::try_from(m).ok())
        .filter(|m| *m > 0)
        .map(|m| m.saturating_mul(1 << 20))
        .unwrap_or(HOST_MEMORY);
    let now = now_ns();
    Stats {
        timestamp_ns: now,
        cpu_total_ns: ran / 100,
        system_cpu_ns: u64::try_from(now)
            .unwrap_or(0)
            .saturating_mul(u64::from(online_cpus)),
        online_cpus,
        memory_usage_bytes: if st.running { USAGE.min(limit) } else { 0 },
        memory_limit_bytes: limit,
        network_rx_bytes: ran / 1_000_000,
        network_tx_bytes: ran / 2_000_000,
    }
}

impl SimRuntime {
    /// An empty engine.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same, with stats samples `interval` apart (default: a second).
    pub fn with_stats_interval(mut self, interval: Duration) -> Self {
        self.stats_interval = interval;
        self
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Hollow>) -> T) -> Result<T> {
        let mut g = self
            .containers
            .lock()
            .map_err(|_| RuntimeError("simulated runtime poisoned".into()))?;
        Ok(f(&mut g))
    }

    fn observed(id: &str, h: &Hollow) -> Observed {
        Observed {
            id: id.to_string(),
            name: h.spec.name.clone(),
            labels: h.spec.labels.clone(),
            running: h.running,
            exit_code: h.exit_code,
            started: h.started,
            // Hollow containers pass their health checks at once.
            health: h
                .spec
                .health
                .as_ref()
                .map(|_| if h.running { "healthy" } else { "unhealthy" }.to_string()),
            bindings: h.bindings.clone(),
            ips: h.ip.iter().filter(|_| h.running).cloned().collect(),
            oom_killed: false,
            error: None,
            image_id: Some(format!("sha256:simulated-{}", h.spec.image)),
            ..Observed::default()
        }
    }
}

impl ContainerRuntime for SimRuntime {
    async fn image_present(&self, _image: &str) -> Result<bool> {
        Ok(true)
    }

    async fn pull(
        &self,
        _image: &str,
        _auth: Option<&gantry_api::agent::RegistryAuth>,
    ) -> Result<()> {
        Ok(())
    }

    async fn ensure_volume(
        &self,
        _name: &str,
        _driver: Option<&str>,
        _opts: &HashMap<String, String>,
        _labels: &HashMap<String, String>,
    ) -> Result<()> {
        Ok(())
    }

    async fn remove_volume(&self, _name: &str) -> Result<()> {
        Ok(())
    }

    async fn engine_networks(&self) -> Result<Vec<gantry_api::agent::EngineNetwork>> {
        Ok(Vec::new())
    }

    async fn ensure_network(
        &self,
        _name: &str,
        _subnet: &str,
        _gateway: &str,
        _installation: &str,
    ) -> Result<()> {
        Ok(())
    }

    async fn set_firewall(
        &self,
        _task_id: &str,
        _ip: &str,
        _fw: Option<&gantry_api::agent::Firewall>,
    ) -> Result<()> {
        Ok(())
    }

    async fn ensure_pause_image(&self) -> Result<String> {
        Ok(crate::docker::PAUSE_IMAGE.to_string())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("sim{n:016x}");
        let bindings = if spec.network_mode == "bridge" {
            spec.ports
                .iter()
                .map(|p| Binding {
                    container_port: p.container_port,
                    protocol: p.protocol,
                    host_ip: "0.0.0.0".into(),
                    host_port: p.host_port.unwrap_or_else(|| {
                        32768 + (self.next_port.fetch_add(1, Ordering::Relaxed) % 28000) as u16
                    }),
                })
                .collect()
        } else {
            Vec::new()
        };
        let hollow = Hollow {
            spec: spec.clone(),
            running: false,
            started: false,
            exit_code: None,
            bindings,
            // 172.16.0.0/12, unique for the first million containers.
            ip: (spec.network_mode == "bridge").then(|| {
                let n = n % (1 << 20);
                format!("172.{}.{}.{}", 16 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
            }),
            stopped: Arc::new(Notify::new()),
            output: Arc::default(),
        };
        self.with(|c| c.insert(id.clone(), hollow))?;
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.with(|c| match c.get_mut(id) {
            Some(h) => {
                h.running = true;
                h.started = true;
                h.output.start(&h.spec);
                Ok(())
            }
            None => Err(RuntimeError(format!("no such container: {id}"))),
        })?
    }

    async fn stop(&self, id: &str, _timeout_secs: u32) -> Result<()> {
        self.with(|c| {
            if let Some(h) = c.get_mut(id) {
                if h.running {
                    h.running = false;
                    h.exit_code = Some(143);
                    h.stopped.notify_waiters();
                    h.output.stop();
                }
            }
        })
    }

    async fn remove(&self, id: &str) -> Result<()> {
        self.with(|c| {
            if let Some(h) = c.remove(id) {
                h.stopped.notify_waiters();
                h.output.stop();
            }
        })
    }

    async fn inspect(&self, id: &str) -> Result<Option<Observed>> {
        self.with(|c| c.get(id).map(|h| Self::observed(id, h)))
    }

    async fn list(&self, labels: &[(&str, &str)]) -> Result<Vec<Observed>> {
        self.with(|c| {
            c.iter()
                .filter(|(_, h)| {
                    labels
                        .iter()
                        .all(|(k, v)| h.spec.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .map(|(id, h)| Self::observed(id, h))
                .collect()
        })
    }

    async fn wait(&self, id: &str) {
        let notify = match self.with(|c| c.get(id).filter(|h| h.running).map(|h| h.stopped.clone()))
        {
            Ok(Some(n)) => n,
            _ => return,
        };
        let notified = notify.notified();
        // Re-check after registering interest, so a stop in between is not missed.
        if matches!(
            self.with(|c| c.get(id).is_some_and(|h| h.running)),
            Ok(true)
        ) {
            notified.await;
        }
    }

    async fn logs(&self, id: &str, since: Option<i64>, follow: bool) -> Result<LogStream> {
        let output = self
            .with(|c| c.get(id).map(|h| h.output.clone()))?
            .ok_or_else(|| RuntimeError(format!("no such container: {id}")))?;
        let lines = futures_util::stream::unfold((output, 0usize), move |(output, mut next)| {
            async move {
                let line = loop {
                    // Interest first, then the check: a line written in between is not missed.
                    let changed = output.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    {
                        let st = output.lock();
                        if let Some(line) = st.lines.get(next) {
                            next += 1;
                            if since.is_some_and(|s| line.timestamp_ns.is_some_and(|t| t < s)) {
                                continue;
                            }
                            break line.clone();
                        }
                        if !follow || !st.running {
                            return None;
                        }
                    }
                    changed.await;
                };
                Some((Ok(line), (output, next)))
            }
        });
        Ok(LogStream::new(lines))
    }

    async fn stats(&self, id: &str) -> Result<StatsStream> {
        let (output, memory) = self
            .with(|c| c.get(id).map(|h| (h.output.clone(), h.spec.memory_mib)))?
            .ok_or_else(|| RuntimeError(format!("no such container: {id}")))?;
        let interval = self.stats_interval;
        // A sample at once, then one per interval while the container runs.
        let samples =
            futures_util::stream::unfold((output, true), move |(output, first)| async move {
                if !first {
                    tokio::time::sleep(interval).await;
                    if !output.lock().running {
                        return None;
                    }
                }
                let s = sample(&output.lock(), memory);
                Some((Ok(s), (output, false)))
            });
        Ok(StatsStream::new(samples))
    }

    async fn docker_stats(&self, id: &str) -> Result<serde_json::Value> {
        let mut samples = self.stats(id).await?;
        let s = samples
            .next()
            .await
            .ok_or_else(|| RuntimeError(format!("no stats for {id}")))??;
        Ok(crate::runtime::docker_shape(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hollow_containers_run_until_stopped() {
        let rt = Arc::new(SimRuntime::new());
        let spec = ContainerSpec {
            name: "c".into(),
            image: "img".into(),
            labels: HashMap::from([("k".to_string(), "v".to_string())]),
            network_mode: "bridge".into(),
            ports: vec![PortSpec {
                container_port: 80,
                host_port: None,
                protocol: Protocol::Tcp,
            }],
            ..ContainerSpec::default()
        };
        let id = rt.create(&spec).await.unwrap();
        rt.start(&id).await.unwrap();
        let o = rt.inspect(&id).await.unwrap().unwrap();
        assert!(o.running && o.bindings[0].host_port >= 32768);
        assert_eq!(rt.list(&[("k", "v")]).await.unwrap().len(), 1);
        let waiter = {
            let (rt, id) = (rt.clone(), id.clone());
            tokio::spawn(async move { rt.wait(&id).await })
        };
        tokio::task::yield_now().await;
        rt.stop(&id, 1).await.unwrap();
        waiter.await.unwrap();
        assert_eq!(rt.inspect(&id).await.unwrap().unwrap().exit_code, Some(143));
    }

    async fn next_line(logs: &mut LogStream) -> Option<(LogSource, String)> {
        let l = tokio::time::timeout(std::time::Duration::from_secs(5), logs.next())
            .await
            .expect("a line or the end in time")?
            .unwrap();
        Some((l.stream, String::from_utf8(l.line).unwrap()))
    }

    #[tokio::test]
    async fn hollow_containers_log_what_their_environment_says() {
        let rt = SimRuntime::new();
        let quiet = rt.create(&ContainerSpec::default()).await.unwrap();
        rt.start(&quiet).await.unwrap();
        let mut logs = rt.logs(&quiet, None, false).await.unwrap();
        assert_eq!(next_line(&mut logs).await, None, "no output by default");

        let spec = ContainerSpec {
            env: vec![
                format!("{STDOUT_ENV}=one\ntwo"),
                format!("{STDERR_ENV}=oops"),
                "OTHER=x".into(),
            ],
            ..ContainerSpec::default()
        };
        let id = rt.create(&spec).await.unwrap();
        // Following from before the start: the lines arrive when it starts.
        let mut follow = rt.logs(&id, None, true).await.unwrap();
        rt.start(&id).await.unwrap();
        let want = vec![
            (LogSource::Stdout, "one".to_string()),
            (LogSource::Stdout, "two".to_string()),
            (LogSource::Stderr, "oops".to_string()),
        ];
        for w in &want {
            assert_eq!(next_line(&mut follow).await.as_ref(), Some(w));
        }
        // A follower ends when the container stops.
        rt.stop(&id, 1).await.unwrap();
        assert_eq!(next_line(&mut follow).await, None);
        // Without follow, the stream ends after what is there; since skips older lines.
        let mut all = rt.logs(&id, None, false).await.unwrap();
        let mut got = Vec::new();
        while let Some(l) = next_line(&mut all).await {
            got.push(l);
        }
        assert_eq!(got, want);
        let mut later = rt.logs(&id, Some(i64::MAX), false).await.unwrap();
        assert_eq!(next_line(&mut later).await, None);
        assert!(rt.logs("nope", None, false).await.is_err());
    }

    #[tokio::test]
    async fn hollow_stats_are_synthetic_but_consistent() {
        let rt = SimRuntime::new().with_stats_interval(std::time::Duration::from_millis(20));
        let spec = ContainerSpec {
            memory_mib: Some(4),
            ..ContainerSpec::default()
        };
        let id = rt.create(&spec).await.unwrap();
        rt.start(&id).await.unwrap();
        let mut stats = rt.stats(&id).await.unwrap();
        let a = stats.next().await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        let b = stats.next().await.unwrap().unwrap();
        assert_eq!(a.memory_limit_bytes, 4 << 20);
        assert_eq!(a.memory_usage_bytes, 4 << 20, "usage within the limit");
        assert!(a.online_cpus >= 1);
        assert!(b.cpu_total_ns > a.cpu_total_ns && b.system_cpu_ns > a.system_cpu_ns);
        assert!(b.cpu_total_ns - a.cpu_total_ns < b.system_cpu_ns - a.system_cpu_ns);
        assert!(b.network_rx_bytes >= a.network_rx_bytes && b.timestamp_ns > a.timestamp_ns);
        rt.stop(&id, 1).await.unwrap();
        assert!(
            stats.next().await.is_none(),
            "the stream ends when it stops"
        );
        assert!(rt.stats("nope").await.is_err());
    }
}
