//! The `gantry` binary: `gantry up`, `gantry server`, `gantry credentials`.

mod config;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::{Settings, SettingsArgs};
use gantry_server::{Server, ServerConfig};
use gantry_store::SqliteStore;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "A self-hosted container orchestrator that speaks the Amazon ECS API.",
    long_about = "A self-hosted container orchestrator that speaks the Amazon ECS API.\n\n\
        Start with `gantry up`, paste the `export` line it prints into your shell, and use the \
        AWS CLI, boto3 or any AWS SDK against it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine: the control plane on the embedded store (the default way to
    /// start). Prints the shell line that points the AWS CLI at it on every start.
    Up(SettingsArgs),
    /// Run the control plane only. Prints the shell line for the admin credentials when it
    /// creates them (the first start); `gantry credentials` prints it again.
    Server(SettingsArgs),
    /// Print the `export ...` line for the admin credentials of a data directory.
    Credentials {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Print JSON ({"accessKeyId", "secretAccessKey", "region", "endpoint"}) instead.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Up(args) => serve(Settings::resolve(args)?, true),
        Command::Server(args) => serve(Settings::resolve(args)?, false),
        Command::Credentials { settings, json } => {
            let s = Settings::resolve(settings)?;
            let (admin, _) = s.admin_key()?;
            if json {
                let v = serde_json::json!({
                    "accessKeyId": admin.access_key_id,
                    "secretAccessKey": admin.secret_access_key,
                    "region": s.region,
                    "endpoint": s.endpoint(),
                });
                println!("{v}");
            } else {
                println!("{}", s.export_line(&admin));
            }
            Ok(())
        }
    }
}

fn serve(settings: Settings, always_print: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating the data directory {}", settings.data_dir.display()))?;
        let (admin, created) = settings.admin_key()?;
        let keys = settings.key_set(&admin);
        let db = settings.data_dir.join("state.db");
        let store = SqliteStore::open(&db).with_context(|| format!("opening the store {}", db.display()))?;
        let store = Arc::new(store);
        let mut cfg = ServerConfig::new(settings.region.clone(), settings.account_id.clone(), keys);
        cfg.max_body_bytes = 4 * 1024 * 1024;
        let server = Server::new(cfg, store.clone()).await.context("loading the state")?;
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %settings.data_dir.display(), region = %settings.region, "gantry is serving the ECS API");
        if always_print || created {
            println!("# gantry is up. Point the AWS CLI, boto3 and the SDKs at it with:");
            println!("{}", settings.export_line(&admin));
            println!("# then try: aws ecs list-clusters");
        }
        gantry_server::run(listener, server, shutdown_signal()).await?;
        tracing::info!("shutting down");
        store.close();
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
