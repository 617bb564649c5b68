//! A simulated container runtime: hollow containers that "run" until stopped, kept in memory.
//!
//! Like Kubernetes' hollow nodes, it lets the real agent code (registration, polling, task
//! workers, reports) drive thousands of instances from one process without Docker, for scale
//! work and the scheduler's end-to-end tests. It is never the default, and no test of real
//! container behaviour uses it. It is also the in-repo fake of [`ContainerRuntime`].

use crate::runtime::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

struct Hollow {
    spec: ContainerSpec,
    running: bool,
    started: bool,
    exit_code: Option<i64>,
    bindings: Vec<Binding>,
    /// A bridge container's address (it has it while it runs).
    ip: Option<String>,
    stopped: Arc<Notify>,
}

/// An in-memory "engine" of hollow containers.
#[derive(Default)]
pub struct SimRuntime {
    containers: Mutex<HashMap<String, Hollow>>,
    next_id: AtomicU64,
    next_port: AtomicU64,
}

impl SimRuntime {
    pub fn new() -> Self {
        Self::default()
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
        }
    }
}

impl ContainerRuntime for SimRuntime {
    async fn image_present(&self, _image: &str) -> Result<bool> {
        Ok(true)
    }

    async fn pull(&self, _image: &str) -> Result<()> {
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

    async fn ensure_network(&self, _name: &str, _subnet: &str, _gateway: &str) -> Result<()> {
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
        };
        self.with(|c| c.insert(id.clone(), hollow))?;
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.with(|c| match c.get_mut(id) {
            Some(h) => {
                h.running = true;
                h.started = true;
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
                }
            }
        })
    }

    async fn remove(&self, id: &str) -> Result<()> {
        self.with(|c| {
            if let Some(h) = c.remove(id) {
                h.stopped.notify_waiters();
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
}
