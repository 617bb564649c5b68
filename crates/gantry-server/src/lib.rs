//! gantry-server: the control plane as a library.
//!
//! ECS itself, as one entry ([`http::ecs_entry`]) of gantry-core's service table: the front
//! door routes and authorizes each call, `ops::dispatch` decodes each operation's input shape
//! and runs it in `ops`; [`state`] is the in-memory state persisted through a
//! [`gantry_store::Store`] namespace.

pub mod agent_api;
mod agent_logs;
pub mod events;
mod events_api;
pub mod http;
mod ops;
pub mod paginate;
mod placement_cache;
pub mod reconcile;
pub mod state;
mod task_secrets;
pub mod tls;

use gantry_api::{ApiError, Arns};
use gantry_auth::KeySet;
use gantry_store::{Store, Txn, TxnOutcome};
use state::State;
use std::future::Future;
use std::sync::{Arc, RwLock};

/// What a control plane needs to know about itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub region: String,
    pub account_id: String,
    pub keys: KeySet,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// The bearer token agents must present (`None`: the agent endpoint is closed).
    pub join_token: Option<String>,
    /// An agent not heard from for this long shows `agentConnected: false`.
    pub agent_timeout: std::time::Duration,
    /// STOPPED tasks stay describable this long (ECS: about an hour).
    pub task_retention: std::time::Duration,
    /// How often the housekeeping loop runs (stopped-task expiry).
    pub housekeeping_interval: std::time::Duration,
    /// How often the service scheduler reconciles every service.
    pub service_interval: std::time::Duration,
    /// A service task without a health check counts as healthy after this long in RUNNING
    /// (ECS: 40 s).
    pub healthy_after: std::time::Duration,
    /// The service throttle: the first backoff after a task fails to start, doubling up to the cap.
    pub throttle_base: std::time::Duration,
    pub throttle_cap: std::time::Duration,
    /// An agent silent this long is lost: its tasks are stopped and services replace them.
    pub lost_timeout: std::time::Duration,
    /// Tasks stopped on a lost instance count as STOPPED after this long without confirmation.
    pub lost_grace: std::time::Duration,
    /// The CIDR (`/8` to `/24`) awsvpc subnets take their /24s from.
    pub awsvpc_pool: String,
    /// How tasks' secrets are read, and who decides whether their execution role may: none in a
    /// server assembled without those services (a task with secrets then fails to start).
    pub task_access: Option<TaskAccess>,
    /// The load balancers' target groups, for services with `loadBalancers`.
    pub targets: Option<Arc<dyn gantry_core::TargetRegistry>>,
    /// Cloud Map's services, for services with `serviceRegistries`.
    pub registries: Option<Arc<dyn gantry_core::ServiceRegistry>>,
    /// The address bridge and host tasks are registered at for discovery (the host's, where
    /// their host ports are bound); `None`: such tasks are not registered.
    pub registry_host_address: Option<String>,
}

/// What the server needs to act as a task's execution role.
#[derive(Clone)]
pub struct TaskAccess {
    pub secrets: Arc<dyn gantry_core::SecretSource>,
    pub authorizer: Arc<dyn gantry_core::Authorizer>,
    /// The sessions of task roles (`taskRoleArn`), served to containers by their agent.
    pub roles: Arc<dyn gantry_core::TaskRoles>,
    /// Where the `awslogs` output of containers goes.
    pub logs: Option<Arc<dyn gantry_core::LogSink>>,
}

impl std::fmt::Debug for TaskAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskAccess(..)")
    }
}

impl ServerConfig {
    pub fn new(region: impl Into<String>, account_id: impl Into<String>, keys: KeySet) -> Self {
        ServerConfig {
            region: region.into(),
            account_id: account_id.into(),
            keys,
            max_body_bytes: 4 * 1024 * 1024,
            join_token: None,
            agent_timeout: std::time::Duration::from_secs(30),
            task_retention: std::time::Duration::from_secs(3600),
            housekeeping_interval: std::time::Duration::from_secs(30),
            service_interval: std::time::Duration::from_secs(1),
            healthy_after: std::time::Duration::from_secs(40),
            throttle_base: std::time::Duration::from_secs(10),
            throttle_cap: std::time::Duration::from_secs(15 * 60),
            lost_timeout: std::time::Duration::from_secs(10 * 60),
            lost_grace: std::time::Duration::from_secs(60),
            awsvpc_pool: ops::network::DEFAULT_POOL.to_string(),
            task_access: None,
            targets: None,
            registries: None,
            registry_host_address: None,
        }
    }
}

/// The control plane: configuration, state and the store behind it.
pub struct Server {
    pub config: ServerConfig,
    /// The time reconcilers see (the system's; a fake one in tests).
    pub clock: Arc<dyn gantry_core::Clock>,
    /// This installation's id, unique per store: agents label their containers with it.
    pub installation: String,
    pub arns: Arns,
    state: RwLock<State>,
    store: Arc<dyn Store>,
    /// Wakes the service scheduler before its next tick.
    service_nudge: tokio::sync::Notify,
    /// The scheduler's view of each cluster, kept between placements.
    placement: std::sync::Mutex<placement_cache::PlacementCache>,
    /// Per instance: ticks when its desired task set changes, waking its agent's long poll.
    waiters: std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<u64>>>,
    /// Set while the state is rebuilt after a failed commit: writes are refused meanwhile.
    resyncing: std::sync::atomic::AtomicBool,
    resync_lock: tokio::sync::Mutex<()>,
    /// ECS's events, from every committed write.
    pub events: events::EventBus,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("loading state: {0}")]
    Load(#[from] state::LoadError),
    #[error("opening the store: {0}")]
    Store(#[from] gantry_store::StoreError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The key of the installation's id (outside every service's namespace).
const INSTALLATION_KEY: &str = "gantry/installation";

/// The installation's id: read, or created if absent (compare-and-swap: of two servers
/// starting at once on one store, one creates it and the other reads it back).
async fn installation_id(store: &dyn Store) -> Result<String, gantry_store::StoreError> {
    loop {
        let (kvs, _) = store.range(INSTALLATION_KEY).await?;
        if let Some(kv) = kvs.iter().find(|kv| kv.key == INSTALLATION_KEY) {
            return Ok(String::from_utf8_lossy(&kv.value).into_owned());
        }
        let id = format!("gantry-{}", uuid::Uuid::new_v4().simple());
        let txn = Txn::new()
            .when_absent(INSTALLATION_KEY)
            .put(INSTALLATION_KEY, id.clone());
        if let TxnOutcome::Committed(_) = store.commit(txn).await? {
            return Ok(id);
        }
    }
}

impl Server {
    /// Opens the control plane on `store`: ECS's records live in the namespace of the
    /// server's region (`ecs/<region>/`); records written before namespaces existed are moved
    /// there first. Loads the state, and the installation's id (created once, by a
    /// compare-and-swap, so two servers starting on one store agree on it).
    pub async fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Server>, StartError> {
        let installation = installation_id(store.as_ref()).await?;
        let scoped = gantry_core::Scoped::regional(store, "ecs", &config.region);
        let moved = scoped.adopt_unscoped(state::records::PREFIXES).await?;
        if moved > 0 {
            tracing::info!(
                records = moved,
                namespace = scoped.prefix(),
                "moved records into the region's namespace"
            );
        }
        let store: Arc<dyn Store> = Arc::new(scoped);
        let (config_region, config_account) = (config.region.clone(), config.account_id.clone());
        let pool = ops::network::Pool::parse(&config.awsvpc_pool).map_err(StartError::Config)?;
        let mut state = State::load(store.as_ref()).await?;
        state.awsvpc_pool = pool;
        Ok(Arc::new(Server {
            arns: Arns::new(config.region.clone(), config.account_id.clone()),
            clock: Arc::new(gantry_core::SystemClock),
            config,
            installation,
            state: RwLock::new(state),
            store,
            waiters: std::sync::Mutex::new(std::collections::HashMap::new()),
            placement: std::sync::Mutex::new(placement_cache::PlacementCache::default()),
            service_nudge: tokio::sync::Notify::new(),
            resyncing: std::sync::atomic::AtomicBool::new(false),
            resync_lock: tokio::sync::Mutex::new(()),
            events: events::EventBus::new(config_region, config_account),
        }))
    }

    /// Runs `f` on the state for reading.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ApiError> {
        // A panic elsewhere must not take the API down with it: keep serving the state.
        let st = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(f(&st))
    }

    /// Runs `f` on the state for writing. `f` validates before it mutates, and returns its
    /// result and the store transaction that persists its change. The transaction is queued
    /// under the lock, so the store sees writes in the order memory did; the caller is answered
    /// once the write is durable. A commit that fails leaves no trace: the state is rebuilt from
    /// the store ([`Server::resync`]) before the error is answered.
    pub(crate) fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<(R, Txn), ApiError>,
    ) -> impl Future<Output = Result<R, ApiError>> + Send + '_ {
        let queued = {
            let mut st = self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.resyncing.load(std::sync::atomic::Ordering::SeqCst) {
                Err(ApiError::server(
                    "The control plane is recovering from a store failure; try again.",
                ))
            } else {
                let r = f(&mut st).map(|(r, txn)| {
                    // The records events are made of, told once the write is durable.
                    let watched = events::watched(&txn.ops);
                    let commit = (!txn.ops.is_empty()).then(|| self.store.commit(txn));
                    (r, commit, watched)
                });
                let bumped = std::mem::take(&mut st.bumped);
                self.wake(bumped);
                r
            }
        };
        async move {
            let (r, commit, watched) = queued?;
            if let Some(commit) = commit {
                let failure = match commit.await {
                    Ok(TxnOutcome::Committed(_)) => {
                        if !watched.is_empty() {
                            self.events.committed(&watched, crate::now_secs());
                        }
                        return Ok(r);
                    }
                    Ok(TxnOutcome::Conflict) => "a compare failed".to_string(),
                    Err(e) => e.to_string(),
                };
                tracing::error!(error = %failure, "store write failed; rebuilding the state from the store");
                self.resync().await;
                return Err(ApiError::server("The store could not persist the change."));
            }
            Ok(r)
        }
    }

    /// Wakes the polls of instances whose desired task set changed.
    fn wake(&self, instances: Vec<String>) {
        if instances.is_empty() {
            return;
        }
        if let Ok(w) = self.waiters.lock() {
            for id in instances {
                if let Some(tx) = w.get(&id) {
                    tx.send_modify(|v| *v = v.wrapping_add(1));
                }
            }
        }
    }

    /// Makes memory equal to the store again after a failed commit: refuses writes, waits until
    /// every commit queued before has settled (the store applies commits in call order, so an
    /// empty commit queued now settles after them), reloads the state, keeps what lives only in
    /// memory (agent liveness), and wakes every agent so each re-reads its desired set.
    pub(crate) async fn resync(&self) {
        use std::sync::atomic::Ordering;
        let _one_at_a_time = self.resync_lock.lock().await;
        {
            let _st = self
                .state
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.resyncing.store(true, Ordering::SeqCst);
        }
        let _ = self.store.commit(Txn::new()).await;
        loop {
            match State::load(self.store.as_ref()).await {
                Ok(mut fresh) => {
                    let mut st = self
                        .state
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    for (id, rec) in fresh.instances.iter_mut() {
                        if let Some(old) = st.instances.get(id) {
                            rec.last_seen = old.last_seen;
                            rec.open_polls = old.open_polls;
                            rec.revision = old.revision.wrapping_add(1);
                        }
                    }
                    fresh.awsvpc_pool = st.awsvpc_pool;
                    let all: Vec<String> = fresh.instances.keys().cloned().collect();
                    *st = fresh;
                    *self.placement_cache() = placement_cache::PlacementCache::default();
                    self.resyncing.store(false, Ordering::SeqCst);
                    drop(st);
                    self.wake(all);
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reloading the state failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Creates the cluster if it does not exist (as the account's root).
    pub async fn ensure_cluster(&self, name: &str) -> Result<(), ApiError> {
        let root = gantry_core::Principal::system(&self.config.account_id);
        let req = gantry_api::model::CreateClusterRequest {
            cluster_name: Some(name.to_string()),
            ..Default::default()
        };
        ops::create_cluster(self, req, &gantry_core::Caller::system(&root))
            .await
            .map(|_| ())
    }
}

/// Serves the ECS API and the agent endpoint on `listener`, and runs the housekeeping loop,
/// until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let door = http::front_door(&server, http::Access::admin_only(&server), Vec::new())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    run_with(listener, server, door, shutdown).await
}

/// [`run`] with a front door of the caller's making (more services in its table).
pub async fn run_with(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    door: Arc<gantry_core::FrontDoor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_tls(listener, server, door, None, shutdown).await
}

/// [`run_with`], over HTTPS when `tls` is given ([`tls::server_config`]).
pub async fn run_tls(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    door: Arc<gantry_core::FrontDoor>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hk = tokio::spawn(reconcile::run_housekeeping(server.clone()));
    let svc = tokio::spawn(reconcile::run_services(server.clone()));
    let router = http::router_with(server, door);
    let r = match tls {
        Some(cfg) => tls::serve(listener, router, cfg, shutdown).await,
        None => {
            let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    hk.abort();
    svc.abort();
    r
}

impl Server {
    /// The placement caches; rebuilt from scratch if a panic left them half-updated.
    pub(crate) fn placement_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, placement_cache::PlacementCache> {
        self.placement.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            *g = placement_cache::PlacementCache::default();
            g
        })
    }

    /// Asks the service scheduler to reconcile now.
    pub(crate) fn nudge_services(&self) {
        self.service_nudge.notify_one();
    }

    /// A receiver that ticks when `instance`'s desired task set changes.
    pub(crate) fn subscribe(
        &self,
        instance: &str,
    ) -> Result<tokio::sync::watch::Receiver<u64>, ApiError> {
        let mut w = self
            .waiters
            .lock()
            .map_err(|_| ApiError::server("waiters lock poisoned"))?;
        let mut rx = w
            .entry(instance.to_string())
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe();
        rx.borrow_and_update();
        Ok(rx)
    }

    /// Records contact from an instance's agent (in memory only): `open` is +1 when a poll
    /// starts waiting, -1 when it ends, 0 for other contact.
    pub(crate) fn touch(&self, instance: &str, open: i32) -> Result<(), ApiError> {
        let mut st = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rec = st
            .instances
            .get_mut(instance)
            .ok_or_else(|| ApiError::invalid("Unknown container instance; register first."))?;
        rec.last_seen = now_secs();
        rec.open_polls = rec.open_polls.saturating_add_signed(open);
        Ok(())
    }
}

/// Seconds since the Unix epoch, with milliseconds, as ECS timestamps are.
pub(crate) fn now_secs() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}
