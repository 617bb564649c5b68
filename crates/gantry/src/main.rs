//! The `gantry` binary: `gantry up | server | agent | logs | events | credentials | join-token |
//! stop-all-tasks | security-group`. [`serve`] assembles the server (and `gantry up`'s agent).

mod client;
mod config;
mod dns;
mod events_cmd;
mod logs_cmd;
mod serve;
mod tls;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use config::{parse_duration, Settings, SettingsArgs};
use gantry_agent::docker::DockerRuntime;
use gantry_agent::task::PullPolicy;
use gantry_agent::{Agent, AgentConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "A self-hosted container orchestrator that speaks the Amazon ECS API.",
    long_about = "A self-hosted container orchestrator that speaks the Amazon ECS API.\n\n\
        Start with `gantry up`, paste the `export` line it prints into your shell, and use the \
        AWS CLI, boto3 or any AWS SDK against it: `aws ecs run-task --task-definition X`."
)]
struct Cli {
    /// Log lines as text for people, or as JSON objects (one per line) for log shippers.
    #[arg(long, global = true, env = "GANTRY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine: the control plane on the embedded store and an agent on
    /// the local Docker, in the cluster `default`. Prints the shell line that points the AWS CLI
    /// at it on every start.
    Up {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        timing: ServerTiming,
        #[command(flatten)]
        agent: Box<AgentTuning>,
    },
    /// Run the control plane only. Prints the shell line for the admin credentials when it
    /// creates them (the first start); `gantry credentials` prints it again.
    Server {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        timing: ServerTiming,
    },
    /// Run an agent: register this host's Docker Engine as a container instance of a cluster and
    /// run the tasks placed on it. Stopping the agent leaves its tasks running.
    Agent(AgentArgs),
    /// Run many simulated ("hollow") agents in one process, for scale work: they register,
    /// poll, run hollow containers and report like real agents, without Docker.
    Sim(SimArgs),
    /// Manage the security groups of awsvpc tasks: a task admits traffic from its groups'
    /// members and what their ingress rules allow.
    SecurityGroup {
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(subcommand)]
        action: SgAction,
    },
    /// Print the `export ...` line for the admin credentials of a data directory.
    Credentials {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Print JSON ({"accessKeyId", "secretAccessKey", "region", "endpoint", "caFile"}) instead.
        #[arg(long)]
        json: bool,
    },
    /// Print the token agents need to join this server (`gantry agent --join-token`).
    JoinToken {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Print the awslogs output of a task's containers, or of every task of a service, from
    /// gantry's CloudWatch Logs: `gantry logs -f web`
    Logs {
        #[command(flatten)]
        settings: SettingsArgs,
        /// A task (its ARN or id) or a service (its name)
        target: String,
        /// The cluster
        #[arg(long, default_value = "default")]
        cluster: String,
        /// Keep printing new lines as they come
        #[arg(short, long)]
        follow: bool,
        /// Lines from this long ago on
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        since: Duration,
        /// One JSON object a line: timestamp, task, container, message
        #[arg(long)]
        json: bool,
    },
    /// Print ECS's events (task, container instance, service and deployment state changes, in
    /// EventBridge's envelope): the recent ones, and with -f new ones as they happen
    Events {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Only this cluster's (a name or an ARN)
        #[arg(long)]
        cluster: Option<String>,
        /// Only events of this detail-type, e.g. "ECS Task State Change"
        #[arg(long)]
        detail_type: Option<String>,
        /// Keep printing new events as they happen
        #[arg(short, long)]
        follow: bool,
        /// Each event as its EventBridge JSON, one a line
        #[arg(long)]
        json: bool,
    },
    /// Stop every task gantry runs (every cluster, or one), through the API.
    StopAllTasks {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Only this cluster.
        #[arg(long)]
        cluster: Option<String>,
        /// The stoppedReason recorded on each task.
        #[arg(long, default_value = "Stopped by gantry stop-all-tasks")]
        reason: String,
    },
}

#[derive(Subcommand)]
enum SgAction {
    /// Create or replace a group: `gantry security-group put sg-web --ingress tcp:8080:sg-client`
    Put {
        /// The group id, `sg-` and letters or digits
        group_id: String,
        /// A rule `PROTOCOL:PORTS:SOURCE`: protocol tcp, udp or all; ports `80` or `8000-8100` (or
        /// `*`); source a group (`sg-…`) or a CIDR (`10.0.0.0/8`). Repeatable.
        #[arg(long = "ingress")]
        ingress: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Print the groups as JSON
    List,
    /// Delete a group
    Delete { group_id: String },
}

fn parse_rule(s: &str) -> anyhow::Result<serde_json::Value> {
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    let [protocol, ports, source] = parts[..] else {
        anyhow::bail!("invalid rule {s:?}: use PROTOCOL:PORTS:SOURCE, e.g. tcp:8080:sg-client");
    };
    let (from, to) = match ports {
        "*" | "" => (0u16, 65535u16),
        p => match p.split_once('-') {
            Some((a, b)) => (a.parse()?, b.parse()?),
            None => (p.parse()?, p.parse()?),
        },
    };
    let mut rule = serde_json::json!({"protocol": protocol, "fromPort": from, "toPort": to});
    if source.starts_with("sg-") {
        rule["sourceGroup"] = source.into();
    } else {
        rule["cidr"] = source.into();
    }
    Ok(rule)
}

async fn security_group(settings: Settings, action: SgAction) -> anyhow::Result<()> {
    let (admin, _) = settings.admin_key()?;
    let c = client::EcsClient::new(
        settings.endpoint(),
        admin.access_key_id,
        admin.secret_access_key,
        settings.region.clone(),
        settings.ca_file().as_deref(),
    )?;
    let v = match action {
        SgAction::Put {
            group_id,
            ingress,
            description,
        } => {
            let rules = ingress
                .iter()
                .map(|r| parse_rule(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut body = serde_json::json!({"groupId": group_id, "ingress": rules});
            if let Some(d) = description {
                body["description"] = d.into();
            }
            c.call_gantry("PutSecurityGroup", body).await?
        }
        SgAction::List => {
            c.call_gantry("DescribeSecurityGroups", serde_json::json!({}))
                .await?
        }
        SgAction::Delete { group_id } => {
            c.call_gantry(
                "DeleteSecurityGroup",
                serde_json::json!({"groupId": group_id}),
            )
            .await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Control-plane timings (ECS's values by default; tests set them small).
#[derive(Args, Clone, Debug)]
struct ServerTiming {
    /// An agent not heard from for this long shows agentConnected=false
    #[arg(long, env = "GANTRY_AGENT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    agent_timeout: Duration,
    /// How long STOPPED tasks stay describable
    #[arg(long, env = "GANTRY_TASK_RETENTION", default_value = "1h", value_parser = parse_duration)]
    task_retention: Duration,
    /// How often expired tasks are forgotten
    #[arg(long, env = "GANTRY_HOUSEKEEPING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    housekeeping_interval: Duration,
    /// How often the service scheduler reconciles every service
    #[arg(long, env = "GANTRY_SERVICE_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    service_interval: Duration,
    /// A service task without a health check counts as healthy after this long RUNNING
    #[arg(long, env = "GANTRY_HEALTHY_AFTER", default_value = "40s", value_parser = parse_duration)]
    healthy_after: Duration,
    /// The service throttle's first backoff after a task fails to start (it doubles)
    #[arg(long, env = "GANTRY_THROTTLE_BASE", default_value = "10s", value_parser = parse_duration)]
    throttle_base: Duration,
    /// The service throttle's longest backoff
    #[arg(long, env = "GANTRY_THROTTLE_CAP", default_value = "15m", value_parser = parse_duration)]
    throttle_cap: Duration,
    /// An agent silent this long is lost: its tasks are stopped and services replace them
    #[arg(long, env = "GANTRY_LOST_HOST_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    lost_host_timeout: Duration,
    /// Tasks stopped on a lost host count as STOPPED after this long without the agent's word
    #[arg(long, env = "GANTRY_LOST_TASK_GRACE", default_value = "1m", value_parser = parse_duration)]
    lost_task_grace: Duration,
    /// The range awsvpc subnets take their /24s from (ranges other Docker networks on the
    /// agents' engines hold are skipped)
    #[arg(long, env = "GANTRY_AWSVPC_POOL", default_value = "10.213.0.0/16")]
    awsvpc_pool: String,
    /// The shortest session STS grants (AssumeRole, GetSessionToken DurationSeconds), as AWS's
    /// 15 minutes by default; tests make it short to see sessions expire
    #[arg(long, env = "GANTRY_STS_MIN_SESSION", default_value = "15m", value_parser = parse_duration)]
    sts_min_session: Duration,
    /// How long the credentials of a task's role (taskRoleArn) last; they are renewed at half
    /// their life and end when the task stops
    #[arg(long, env = "GANTRY_TASK_CREDENTIALS_TTL", default_value = "6h", value_parser = parse_duration)]
    task_credentials_ttl: Duration,
    /// How often log events older than their group's retention are deleted
    #[arg(long, env = "GANTRY_LOG_EXPIRY_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    log_expiry_interval: Duration,
    /// The address load balancers listen on (their DNSName)
    #[arg(long, env = "GANTRY_ELB_ADDRESS", default_value = "127.0.0.1")]
    elb_address: String,
    /// How long one second of a load balancer's health check interval and timeout, and of a
    /// target group's deregistration delay, lasts (tests make it short)
    #[arg(long, env = "GANTRY_ELB_SECOND", default_value = "1s", value_parser = parse_duration)]
    elb_second: Duration,
    /// Where gantry's DNS server listens (UDP and TCP), answering for Cloud Map's private DNS
    /// namespaces; under `gantry up` the local agent's containers resolve through it. A
    /// link-local address goes on `lo` (needs root). `off` serves none
    #[arg(long, env = "GANTRY_DNS_LISTEN", default_value = "169.254.170.2:53")]
    dns_listen: String,
    /// Where the DNS server sends names outside the namespaces: `auto` (the nameservers of the
    /// host's /etc/resolv.conf), `none` (answered REFUSED), or `ip[:port],...`
    #[arg(long, env = "GANTRY_DNS_FORWARD", default_value = "auto")]
    dns_forward: String,
}

/// Agent behaviour (ECS agent defaults, except where `gantry up` says otherwise).
#[derive(Args, Clone, Debug)]
struct AgentTuning {
    /// Image pull behavior: default, always, once, prefer-cached [default: default; prefer-cached
    /// under `gantry up`]
    #[arg(long, env = "GANTRY_PULL_BEHAVIOR")]
    pull_behavior: Option<PullPolicy>,
    /// SIGTERM→SIGKILL grace for containers without stopTimeout
    #[arg(long, env = "GANTRY_STOP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    stop_timeout: Duration,
    /// How long containers of stopped tasks are kept before removal
    #[arg(long, env = "GANTRY_CLEANUP_WAIT", default_value = "3h", value_parser = parse_duration)]
    cleanup_wait: Duration,
    /// How often a task's containers are re-inspected (health checks, missed exits)
    #[arg(long, env = "GANTRY_AGENT_TICK", default_value = "1s", value_parser = parse_duration)]
    tick: Duration,
    /// CPU units to advertise [default: cores × 1024]
    #[arg(long)]
    cpu: Option<i64>,
    /// Memory (MiB) to advertise [default: the host's]
    #[arg(long)]
    memory: Option<i64>,
    /// The ecs.availability-zone attribute
    #[arg(long, default_value = "local-1a")]
    availability_zone: String,
    /// What this host serves: ec2 (a container instance of the cluster), fargate (capacity for
    /// FARGATE tasks of any cluster, not listed as a container instance) or both [default: ec2;
    /// both under `gantry up`]
    #[arg(long, value_parser = ["ec2", "fargate", "both"])]
    capacity: Option<String>,
    /// The capacity provider (CreateCapacityProvider) this host stands for
    #[arg(long)]
    capacity_provider: Option<String>,
    /// A custom attribute, `name` or `name=value` (repeatable)
    #[arg(long = "attribute")]
    attributes: Vec<String>,
    /// The address tasks reach this agent's endpoint at, port 80: credentials, metadata and
    /// gantry's API (as the ECS agent's 169.254.170.2); `off` serves none. Needs root: the
    /// address goes on `lo` and iptables sends port 80 to the agent's port 51679
    #[arg(long, env = "GANTRY_TASK_ENDPOINT", default_value = "169.254.170.2", value_parser = parse_task_endpoint)]
    task_endpoint: TaskEndpointArg,
    /// DNS servers (IPv4, comma-separated) for containers whose definition names none: a
    /// gantry server's `--dns-listen` address, so tasks find Cloud Map names [default: Docker's;
    /// under `gantry up`, its own DNS server]
    #[arg(long, env = "GANTRY_DNS", value_delimiter = ',')]
    dns: Vec<std::net::Ipv4Addr>,
}

#[derive(Args, Clone, Debug)]
struct SimArgs {
    /// The control plane's URL
    #[arg(long, env = "GANTRY_SERVER", default_value = "http://127.0.0.1:8100")]
    server: String,
    /// The cluster to join
    #[arg(long, env = "GANTRY_CLUSTER", default_value = "default")]
    cluster: String,
    /// The join token (`gantry join-token` on the server prints it)
    #[arg(long, env = "GANTRY_JOIN_TOKEN")]
    join_token: String,
    /// How many simulated instances
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// Spread the instances over this many availability zones (local-1a, local-1b, …)
    #[arg(long, default_value_t = 3)]
    zones: usize,
    /// CPU units per instance
    #[arg(long, default_value_t = 4096)]
    cpu: i64,
    /// Memory MiB per instance
    #[arg(long, default_value_t = 16384)]
    memory: i64,
    /// A custom attribute on every instance, `name` or `name=value` (repeatable)
    #[arg(long = "attribute")]
    attributes: Vec<String>,
    /// Where the simulated agents keep their state [default: a new temporary directory]
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Clone, Debug)]
struct AgentArgs {
    /// The container runtime: the local Docker Engine, or hollow containers for scale work
    #[arg(long, default_value = "docker", value_parser = ["docker", "simulated"])]
    runtime: String,
    /// The control plane's URL
    #[arg(long, env = "GANTRY_SERVER", default_value = "http://127.0.0.1:8100")]
    server: String,
    /// The cluster to join
    #[arg(long, env = "GANTRY_CLUSTER", default_value = "default")]
    cluster: String,
    /// The join token (`gantry join-token` on the server prints it)
    #[arg(long, env = "GANTRY_JOIN_TOKEN")]
    join_token: String,
    /// Where the agent keeps its state [default: ~/.local/share/gantry/agent]
    #[arg(long, env = "GANTRY_AGENT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A PEM CA to trust for an https:// server (the server's `tls/ca.pem` when it generated
    /// its certificate)
    #[arg(long, env = "GANTRY_CA_FILE")]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    tuning: AgentTuning,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        // Each line carries the request's span: service, operation and request id.
        LogFormat::Json => logs.json().with_current_span(true).init(),
        LogFormat::Text => logs.init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Up {
            settings,
            timing,
            agent,
        } => rt.block_on(serve::serve(
            Settings::resolve(settings)?,
            timing,
            Some(*agent),
        )),
        Command::Server { settings, timing } => {
            rt.block_on(serve::serve(Settings::resolve(settings)?, timing, None))
        }
        Command::Agent(args) => rt.block_on(agent(args)),
        Command::Sim(args) => rt.block_on(sim(args)),
        Command::Credentials { settings, json } => {
            let s = Settings::resolve(settings)?;
            let (admin, _) = s.admin_key()?;
            if json {
                let v = serde_json::json!({
                    "accessKeyId": admin.access_key_id,
                    "secretAccessKey": admin.secret_access_key,
                    "region": s.region,
                    "endpoint": s.endpoint(),
                    "caFile": s.ca_file(),
                });
                println!("{v}");
            } else {
                println!("{}", s.export_line(&admin));
            }
            Ok(())
        }
        Command::SecurityGroup { settings, action } => {
            rt.block_on(security_group(Settings::resolve(settings)?, action))
        }
        Command::JoinToken { settings } => {
            println!("{}", Settings::resolve(settings)?.join_token()?);
            Ok(())
        }
        Command::Events {
            settings,
            cluster,
            detail_type,
            follow,
            json,
        } => {
            let c = admin_client(settings)?;
            rt.block_on(events_cmd::run(
                &c,
                events_cmd::Request {
                    cluster,
                    detail_type,
                    follow,
                    json,
                },
            ))
        }
        Command::Logs {
            settings,
            target,
            cluster,
            follow,
            since,
            json,
        } => {
            let c = admin_client(settings)?;
            rt.block_on(logs_cmd::run(
                &c,
                logs_cmd::Request {
                    target,
                    cluster,
                    follow,
                    since,
                    json,
                },
            ))
        }
        Command::StopAllTasks {
            settings,
            cluster,
            reason,
        } => rt.block_on(stop_all_tasks(
            Settings::resolve(settings)?,
            cluster,
            reason,
        )),
    }
}

/// A client of the server `settings` name, with its admin key.
fn admin_client(settings: SettingsArgs) -> anyhow::Result<client::EcsClient> {
    let settings = Settings::resolve(settings)?;
    let (admin, _) = settings.admin_key()?;
    client::EcsClient::new(
        settings.endpoint(),
        admin.access_key_id,
        admin.secret_access_key,
        settings.region.clone(),
        settings.ca_file().as_deref(),
    )
}

/// `--task-endpoint`: an IPv4 address, or `off` (none).
#[derive(Clone, Copy, Debug)]
struct TaskEndpointArg(Option<std::net::Ipv4Addr>);

fn parse_task_endpoint(s: &str) -> Result<TaskEndpointArg, String> {
    match s {
        "off" => Ok(TaskEndpointArg(None)),
        a => a
            .parse()
            .map(|ip| TaskEndpointArg(Some(ip)))
            .map_err(|_| format!("{a:?} is neither an IPv4 address nor `off`")),
    }
}

fn agent_config(
    server: String,
    token: String,
    cluster: String,
    data_dir: PathBuf,
    t: &AgentTuning,
    up: bool,
) -> AgentConfig {
    // `gantry up` defaults to local images and to serving FARGATE tasks too.
    let default_pull = if up {
        PullPolicy::PreferCached
    } else {
        PullPolicy::Default
    };
    let mut cfg = AgentConfig::new(server, token, cluster, data_dir);
    cfg.pull_policy = t.pull_behavior.unwrap_or(default_pull);
    cfg.default_stop_timeout = t.stop_timeout;
    cfg.cleanup_wait = t.cleanup_wait;
    cfg.tick = t.tick;
    cfg.cpu = t.cpu;
    cfg.memory_mib = t.memory;
    cfg.availability_zone = t.availability_zone.clone();
    cfg.capacity = t
        .capacity
        .clone()
        .unwrap_or_else(|| if up { "both".into() } else { "ec2".into() });
    cfg.capacity_provider = t.capacity_provider.clone();
    cfg.attributes = parse_attributes(&t.attributes);
    cfg.task_endpoint = t.task_endpoint.0.map(|address| gantry_agent::TaskEndpoint {
        address,
        ..Default::default()
    });
    cfg.dns_servers = t.dns.clone();
    cfg
}

/// FARGATE tasks get their own gVisor kernel when the engine has the runsc runtime.
fn set_fargate_runtime(cfg: &mut AgentConfig, docker: &DockerRuntime) {
    if cfg.capacity == "ec2" {
        return;
    }
    if docker.runtimes.iter().any(|r| r == "runsc") {
        cfg.fargate_runtime = Some("runsc".into());
        tracing::info!("FARGATE tasks run under gVisor (runsc)");
    } else {
        tracing::warn!("the Docker engine has no runsc runtime: FARGATE tasks share the host kernel (see the README's Fargate isolation)");
    }
}

fn parse_attributes(list: &[String]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (a.clone(), None),
        })
        .collect()
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let base = match args.data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("gantry-sim-{}", std::process::id())),
    };
    let zones = args.zones.max(1);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut agents = tokio::task::JoinSet::new();
    for i in 0..args.instances {
        let mut cfg = AgentConfig::new(
            args.server.clone(),
            args.join_token.clone(),
            args.cluster.clone(),
            base.join(format!("sim-{i}")),
        );
        cfg.cpu = Some(args.cpu);
        cfg.memory_mib = Some(args.memory);
        cfg.availability_zone = format!("local-1{}", (b'a' + (i % zones) as u8) as char);
        cfg.hostname = Some(format!("sim-{i}"));
        cfg.attributes = parse_attributes(&args.attributes);
        cfg.attributes.push(("gantry.simulated".into(), None));
        let agent = Agent::new(
            cfg,
            Arc::new(gantry_agent::sim::SimRuntime::new()),
            "simulated",
        );
        let mut rx = stop_rx.clone();
        agents.spawn(async move {
            agent
                .run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        });
    }
    eprintln!(
        "gantry sim: {} simulated instances joining {} at {}",
        args.instances, args.cluster, args.server
    );
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    while let Some(r) = agents.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "a simulated agent failed");
        }
    }
    Ok(())
}

async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set; give --data-dir")?)
                .join(".local/share/gantry/agent")
        }
    };
    let ca_pem = match &args.ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    if args.runtime == "simulated" {
        let mut cfg = agent_config(
            args.server,
            args.join_token,
            args.cluster,
            data_dir,
            &args.tuning,
            false,
        );
        cfg.ca_pem = ca_pem;
        tracing::warn!("running a simulated agent: hollow containers, no Docker");
        let rt = Arc::new(gantry_agent::sim::SimRuntime::new());
        Agent::new(cfg, rt, "simulated")
            .run(shutdown_signal())
            .await?;
        return Ok(());
    }
    let docker = DockerRuntime::connect()
        .await
        .map_err(|e| anyhow::anyhow!("Docker is not reachable: {e}"))?;
    tracing::info!(docker = %docker.version, api = %docker.api_version, server = %args.server, cluster = %args.cluster, "agent starting");
    let mut cfg = agent_config(
        args.server,
        args.join_token,
        args.cluster,
        data_dir,
        &args.tuning,
        false,
    );
    cfg.ca_pem = ca_pem;
    set_fargate_runtime(&mut cfg, &docker);
    let version = docker.version.clone();
    Agent::new(cfg, Arc::new(docker), version)
        .run(shutdown_signal())
        .await?;
    tracing::info!("agent stopped; running tasks keep running");
    Ok(())
}

async fn stop_all_tasks(
    settings: Settings,
    cluster: Option<String>,
    reason: String,
) -> anyhow::Result<()> {
    let (admin, _) = settings.admin_key()?;
    let ecs = client::EcsClient::new(
        settings.endpoint(),
        admin.access_key_id,
        admin.secret_access_key,
        settings.region.clone(),
        settings.ca_file().as_deref(),
    )?;
    let clusters = match cluster {
        Some(c) => vec![c],
        None => {
            ecs.list_all("ListClusters", serde_json::json!({}), "clusterArns")
                .await?
        }
    };
    let mut stopped = 0;
    for c in clusters {
        let tasks = ecs
            .list_all("ListTasks", serde_json::json!({"cluster": c}), "taskArns")
            .await?;
        for t in tasks {
            ecs.call(
                "StopTask",
                serde_json::json!({"cluster": c, "task": t, "reason": reason}),
            )
            .await?;
            println!("stopping {t}");
            stopped += 1;
        }
    }
    println!("{stopped} task(s) stopping");
    Ok(())
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
