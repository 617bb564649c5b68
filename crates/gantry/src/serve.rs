//! `gantry up` and `gantry server`: the control plane on the embedded store with every service
//! on its port (ECS, IAM, STS, Secrets Manager, SSM, ACM, CloudWatch Logs, ELB, Cloud Map), the DNS
//! server for Cloud Map's names, and under `gantry up` an agent on the local Docker.

use crate::config::{self, Settings};
use crate::{agent_config, set_fargate_runtime, shutdown_signal, tls, AgentTuning, ServerTiming};
use anyhow::Context;
use gantry_agent::docker::DockerRuntime;
use gantry_agent::Agent;
use gantry_server::{Server, ServerConfig};
use gantry_store::SqliteStore;
use std::sync::Arc;

pub async fn serve(
    settings: Settings,
    timing: ServerTiming,
    up: Option<AgentTuning>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "creating the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let (admin, created) = settings.admin_key()?;
    let keys = settings.key_set(&admin);
    let token = settings.join_token()?;
    let db = settings.data_dir.join("state.db");
    let store = Arc::new(
        // No change log for watches: nothing in the server watches its store yet, and the log
        // made RegisterTaskDefinition's p99 about 30 % worse (docs/benchmarks.md).
        SqliteStore::open_with(
            &db,
            gantry_store::StoreOptions {
                history_revisions: 0,
                ..Default::default()
            },
        )
        .with_context(|| format!("opening the store {}", db.display()))?,
    );
    let iam = gantry_iam::Iam::open(
        store.clone(),
        settings.account_id.clone(),
        keys.clone(),
        gantry_iam::IamSettings {
            min_session_secs: timing.sts_min_session.as_secs().max(1) as i64,
            task_session_secs: timing.task_credentials_ttl.as_secs().max(2) as i64,
            ..Default::default()
        },
    )
    .await
    .context("loading the account's identities")?;
    let sealer =
        gantry_secrets::seal::Sealer::open_or_create(&settings.data_dir.join("secrets.key"))
            .context("opening the key that seals secrets (<data-dir>/secrets.key)")?;
    let secrets = gantry_secrets::Secrets::open(
        store.clone(),
        settings.region.clone(),
        settings.account_id.clone(),
        sealer,
    )
    .await
    .context("loading secrets and parameters")?;
    let logs_db = settings.data_dir.join("logs.db");
    let logs = gantry_logs::Logs::new(
        gantry_logs::store::LogStore::open(&logs_db)
            .map_err(|e| anyhow::anyhow!("opening the log store {}: {e}", logs_db.display()))?,
        settings.region.clone(),
        settings.account_id.clone(),
        gantry_logs::LogsSettings {
            expiry_interval: timing.log_expiry_interval,
        },
    );
    tokio::spawn(logs.clone().run_expiry());
    let elb = gantry_elb::Elb::open(
        store.clone(),
        settings.region.clone(),
        settings.account_id.clone(),
        gantry_elb::ElbSettings {
            address: timing.elb_address.clone(),
            second: timing.elb_second,
            certificates: Some(secrets.clone()),
        },
    )
    .await
    .context("loading the load balancers")?;
    tokio::spawn(gantry_elb::plane::run(elb.clone()));
    let discovery = gantry_discovery::Discovery::open(
        store.clone(),
        settings.region.clone(),
        settings.account_id.clone(),
    )
    .await
    .context("loading the service discovery namespaces")?;
    let dns_server = crate::dns::start(&discovery, &timing.dns_listen, &timing.dns_forward).await?;
    let docker = match &up {
        Some(_) => Some(DockerRuntime::connect().await),
        None => None,
    };
    let mut cfg = ServerConfig::new(settings.region.clone(), settings.account_id.clone(), keys);
    // Bridge and host tasks are found at the host's address on Docker's bridge, where their
    // host ports are bound.
    if let Some(Ok(d)) = &docker {
        cfg.registry_host_address = d.bridge_gateway().await.map(|g| g.to_string());
    }
    // One view of the identities decides who signs, what they may do, and what a task's
    // execution role may read.
    let access = Arc::new(gantry_iam::access::Access(iam.clone()));
    cfg.task_access = Some(gantry_server::TaskAccess {
        secrets: secrets.clone(),
        authorizer: access.clone(),
        roles: Arc::new(gantry_iam::task_roles::TaskSessions(iam.clone())),
        logs: Some(logs.clone()),
    });
    cfg.targets = Some(elb.clone());
    cfg.registries = Some(discovery.clone());
    cfg.join_token = Some(token.clone());
    cfg.agent_timeout = timing.agent_timeout;
    cfg.task_retention = timing.task_retention;
    cfg.housekeeping_interval = timing.housekeeping_interval;
    cfg.service_interval = timing.service_interval;
    cfg.healthy_after = timing.healthy_after;
    cfg.throttle_base = timing.throttle_base;
    cfg.throttle_cap = timing.throttle_cap;
    cfg.lost_timeout = timing.lost_host_timeout;
    cfg.lost_grace = timing.lost_task_grace;
    cfg.awsvpc_pool = timing.awsvpc_pool.clone();
    let server = Server::new(cfg, store.clone())
        .await
        .context("loading the state")?;
    let tls = tls::server_config(&settings)?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %settings.data_dir.display(), region = %settings.region, "gantry is serving the ECS API");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut agent_task = None;
    if let Some(tuning) = &up {
        server
            .ensure_cluster("default")
            .await
            .context("creating the default cluster")?;
        match docker {
            None => {}
            Some(Ok(docker)) => {
                // The local agent reaches the server on loopback, over HTTPS when it serves
                // HTTPS (trusting the generated CA, or the given chain under `localhost`).
                let (endpoint, ca_pem) = match &settings.tls {
                    None => (format!("http://127.0.0.1:{}", addr.port()), None),
                    Some(config::Tls::Generated) => (
                        format!("https://127.0.0.1:{}", addr.port()),
                        std::fs::read(tls::ca_path(&settings.data_dir)).ok(),
                    ),
                    Some(config::Tls::Files { cert, .. }) => (
                        format!("https://localhost:{}", addr.port()),
                        std::fs::read(cert).ok(),
                    ),
                };
                let cfg = agent_config(
                    endpoint,
                    token.clone(),
                    "default".into(),
                    settings.data_dir.join("agent"),
                    tuning,
                    true,
                );
                tracing::info!(docker = %docker.version, api = %docker.api_version, "running an agent on the local Docker");
                let mut cfg = cfg;
                cfg.ca_pem = ca_pem;
                if cfg.dns_servers.is_empty() {
                    cfg.dns_servers.extend(dns_server);
                }
                set_fargate_runtime(&mut cfg, &docker);
                let version = docker.version.clone();
                let agent = Agent::new(cfg, Arc::new(docker), version);
                let mut rx = stop_rx.clone();
                agent_task = Some(tokio::spawn(async move {
                    if let Err(e) = agent
                        .run(async move {
                            let _ = rx.wait_for(|s| *s).await;
                        })
                        .await
                    {
                        tracing::error!(error = %e, "the agent stopped");
                    }
                }));
            }
            Some(Err(e)) => {
                eprintln!("gantry: Docker is not reachable ({e}). The ECS API is served, but no tasks can run on this host until Docker is available and gantry is restarted.");
            }
        }
    }
    if up.is_some() || created {
        println!("# gantry is up. Point the AWS CLI, boto3 and the SDKs at it with:");
        println!("{}", settings.export_line(&admin));
        println!("# then try: aws ecs list-clusters");
    }
    drop(stop_rx);
    let door = gantry_server::http::front_door(
        &server,
        gantry_server::http::Access {
            keys: access.clone(),
            authorizer: access,
        },
        vec![
            gantry_iam::api::entry(&iam),
            gantry_iam::sts::entry(&iam),
            gantry_secrets::secretsmanager::entry(&secrets),
            gantry_secrets::ssm::entry(&secrets),
            gantry_secrets::acm::entry(&secrets),
            gantry_logs::entry(&logs),
            gantry_elb::api::entry(&elb),
            gantry_discovery::api::entry(&discovery),
        ],
    )?;
    gantry_server::run_tls(listener, server, door, tls, async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await?;
    if let Some(t) = agent_task {
        let _ = t.await;
    }
    tracing::info!("shutting down; running tasks keep running");
    store.close();
    Ok(())
}
