//! From an assigned task to the containers and volumes to create: ECS container semantics mapped
//! onto Docker's. Pure.

use crate::runtime::{ContainerSpec, HealthSpec, PortSpec, Protocol};
use gantry_api::agent::AssignedTask;
use gantry_api::model::{
    ContainerCondition, ContainerDefinition, ContainerOverride, LaunchType, LogDriver, NetworkMode,
    Scope, TransportProtocol,
};
use std::collections::HashMap;

/// Label keys every container gantry creates carries.
pub mod labels {
    pub const INSTALLATION: &str = "gantry.installation";
    pub const INSTANCE: &str = "gantry.container-instance";
    pub const TASK: &str = "gantry.task";
    pub const CONTAINER: &str = "gantry.container";
    pub const ECS_CLUSTER: &str = "com.amazonaws.ecs.cluster";
    pub const ECS_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
    pub const ECS_CONTAINER_NAME: &str = "com.amazonaws.ecs.container-name";
    pub const ECS_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
    pub const ECS_VERSION: &str = "com.amazonaws.ecs.task-definition-version";
}

/// The json-file size an awslogs container's log may reach before Docker rotates it: never, in
/// practice (the agent reads the one file; rotation is not followed yet).
pub const AWSLOGS_MAX_FILE: &str = "1t";

/// The label value (gantry.container) of an awsvpc task's pause container.
pub const PAUSE_CONTAINER: &str = "~internal~ecs~pause";

/// An awsvpc task's interface, from its ElasticNetworkInterface attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    /// The Docker network of the subnet.
    pub network: String,
    /// `10.213.0.0/24`
    pub subnet: String,
    /// `10.213.0.1`
    pub gateway: String,
    pub ip: String,
    pub mac: String,
}

/// The Docker network of a subnet: one per installation, so that two installations sharing
/// an engine never share a network (`gantry-1a2b3c4d-subnet-web`).
pub fn network_name(owner: &Owner, subnet_id: &str) -> String {
    match owner.installation.strip_prefix("gantry-") {
        Some(id) if id.len() >= 8 && id.is_char_boundary(8) => {
            format!("gantry-{}-{subnet_id}", &id[..8])
        }
        _ => format!("gantry-{subnet_id}"),
    }
}

/// The task's interface, when it is an awsvpc task.
pub fn eni(a: &AssignedTask, owner: &Owner) -> Option<Eni> {
    let att = a
        .task
        .attachments
        .iter()
        .flatten()
        .find(|x| x.r#type.as_deref() == Some("ElasticNetworkInterface"))?;
    let d = |n: &str| {
        att.details
            .iter()
            .flatten()
            .find(|k| k.name.as_deref() == Some(n))
            .and_then(|k| k.value.clone())
    };
    let gw = d("subnetGatewayIpv4Address")?;
    let (gateway, bits) = gw.split_once('/')?;
    let prefix = gateway.rsplit_once('.')?.0;
    Some(Eni {
        network: network_name(owner, &d("subnetId")?),
        subnet: format!("{prefix}.0/{bits}"),
        gateway: gateway.to_string(),
        ip: d("privateIPv4Address")?,
        mac: d("macAddress")?,
    })
}

/// The Docker name of an awsvpc task's pause container ('.' cannot occur in container names).
pub fn pause_name(a: &AssignedTask) -> String {
    let td = &a.task_definition;
    let id = task_id(a.task.task_arn.as_deref().unwrap_or_default());
    format!(
        "gantry-{}-{}.pause-{}",
        td.family.as_deref().unwrap_or("task"),
        td.revision.unwrap_or(0),
        short_id(id)
    )
}

/// The pause container that holds an awsvpc task's network namespace.
pub fn pause(a: &AssignedTask, owner: &Owner, eni: &Eni, image: &str) -> ContainerSpec {
    let task_arn = a.task.task_arn.clone().unwrap_or_default();
    let labels = HashMap::from([
        (labels::INSTALLATION.to_string(), owner.installation.clone()),
        (labels::INSTANCE.to_string(), owner.instance_arn.clone()),
        (labels::TASK.to_string(), task_arn.clone()),
        (labels::CONTAINER.to_string(), PAUSE_CONTAINER.to_string()),
        (labels::ECS_TASK_ARN.to_string(), task_arn),
    ]);
    ContainerSpec {
        name: pause_name(a),
        image: image.to_string(),
        labels,
        cpu_shares: 2,
        network_mode: eni.network.clone(),
        hostname: Some(format!("ip-{}", eni.ip.replace('.', "-"))),
        ipv4: Some(eni.ip.clone()),
        mac: Some(eni.mac.clone()),
        ..ContainerSpec::default()
    }
}

/// Gives a container that names no DNS servers the agent's, unless it shares another's
/// network namespace (awsvpc containers resolve through their pause container) or the
/// host's (host mode keeps the host's resolver, as on ECS).
pub fn default_dns(spec: &mut ContainerSpec, servers: &[String]) {
    let own_namespace = spec.network_mode != "host" && !spec.network_mode.starts_with("container:");
    if spec.dns.is_empty() && own_namespace {
        spec.dns = servers.to_vec();
    }
}

/// A volume to create before the task's containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    pub name: String,
    pub driver: Option<String>,
    pub opts: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// Removed with the task (task scope); shared volumes outlive it.
    pub task_scoped: bool,
}

/// Who is creating the containers (for labels).
#[derive(Debug, Clone)]
pub struct Owner {
    pub installation: String,
    pub instance_arn: String,
}

/// The first 12 characters of a task id (whole characters, whatever the id holds).
fn short_id(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(i, _)| &id[..i])
}

/// The short id of a task ARN.
pub fn task_id(task_arn: &str) -> &str {
    task_arn.rsplit('/').next().unwrap_or(task_arn)
}

/// The Docker name of one container of a task.
pub fn docker_name(a: &AssignedTask, container: &str) -> String {
    let td = &a.task_definition;
    let id = task_id(a.task.task_arn.as_deref().unwrap_or_default());
    format!(
        "gantry-{}-{}-{}-{}",
        td.family.as_deref().unwrap_or("task"),
        td.revision.unwrap_or(0),
        container,
        short_id(id)
    )
}

fn override_for<'a>(a: &'a AssignedTask, name: &str) -> Option<&'a ContainerOverride> {
    a.task
        .overrides
        .as_ref()
        .and_then(|o| o.container_overrides.as_ref())
        .and_then(|v| v.iter().find(|o| o.name.as_deref() == Some(name)))
}

/// The volume name of a task volume.
fn volume_name(a: &AssignedTask, vol: &str, scope: Scope) -> String {
    match scope {
        Scope::Shared => vol.to_string(),
        Scope::Task => format!(
            "gantry-{}-{vol}",
            task_id(a.task.task_arn.as_deref().unwrap_or_default())
        ),
    }
}

/// The volumes the task needs created (Docker-managed ones; host bind mounts need none).
pub fn volumes(a: &AssignedTask) -> Vec<VolumeSpec> {
    let mut out = Vec::new();
    for v in a.task_definition.volumes.iter().flatten() {
        let name = v.name.clone().unwrap_or_default();
        if v.host
            .as_ref()
            .and_then(|h| h.source_path.as_ref())
            .is_some()
        {
            continue;
        }
        let cfg = v.docker_volume_configuration.clone().unwrap_or_default();
        let scope = cfg.scope.unwrap_or(Scope::Task);
        out.push(VolumeSpec {
            name: volume_name(a, &name, scope),
            driver: cfg.driver.clone(),
            opts: cfg
                .driver_opts
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            labels: cfg.labels.clone().unwrap_or_default().into_iter().collect(),
            task_scoped: scope == Scope::Task,
        });
    }
    out
}

/// START dependencies implied by `links` and `volumesFrom`, plus the explicit `dependsOn`.
pub fn dependencies(c: &ContainerDefinition) -> Vec<(String, ContainerCondition)> {
    let mut deps: Vec<(String, ContainerCondition)> = c
        .depends_on
        .iter()
        .flatten()
        .map(|d| (d.container_name.clone(), d.condition))
        .collect();
    let implied = c
        .links
        .iter()
        .flatten()
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .chain(
            c.volumes_from
                .iter()
                .flatten()
                .filter_map(|v| v.source_container.clone()),
        );
    for name in implied {
        if !deps.iter().any(|(n, _)| *n == name) {
            deps.push((name, ContainerCondition::Start));
        }
    }
    deps
}

/// Sets the variables the agent's endpoint gives a container: `(name, value, soft)`, where a
/// soft variable gives way to one the task sets and the others replace it (as ECS's own do).
pub fn set_endpoint_env(env: &mut Vec<String>, vars: Vec<(String, String, bool)>) {
    for (k, v, soft) in vars {
        let prefix = format!("{k}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(_) if soft => {}
            Some(e) => *e = format!("{k}={v}"),
            None => env.push(format!("{k}={v}")),
        }
    }
}

/// The Docker container for one container definition of an assigned task.
pub fn container(a: &AssignedTask, c: &ContainerDefinition, owner: &Owner) -> ContainerSpec {
    let td = &a.task_definition;
    let name = c.name.clone().unwrap_or_default();
    let ov = override_for(a, &name);
    let task_arn = a.task.task_arn.clone().unwrap_or_default();
    let mode = td.network_mode.unwrap_or(NetworkMode::Bridge);

    let mut env: Vec<(String, String)> = c
        .environment
        .iter()
        .flatten()
        .map(|kv| {
            (
                kv.name.clone().unwrap_or_default(),
                kv.value.clone().unwrap_or_default(),
            )
        })
        .collect();
    for kv in ov
        .and_then(|o| o.environment.as_ref())
        .into_iter()
        .flatten()
    {
        let (k, v) = (
            kv.name.clone().unwrap_or_default(),
            kv.value.clone().unwrap_or_default(),
        );
        match env.iter_mut().find(|(n, _)| *n == k) {
            Some(e) => e.1 = v,
            None => env.push((k, v)),
        }
    }
    // The containers' secrets, resolved by the server: they win over plain variables.
    let secrets = a.secrets.get(&name);
    for (k, v) in secrets.iter().flat_map(|s| s.env.iter()) {
        match env.iter_mut().find(|(n, _)| n == k) {
            Some(e) => e.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    // What every ECS container finds set unless the task sets it: its region, and how it runs.
    let region = task_arn.split(':').nth(3).unwrap_or_default().to_string();
    let execution_env = if a.task.launch_type == Some(LaunchType::Fargate) {
        "AWS_ECS_FARGATE"
    } else {
        "AWS_ECS_EC2"
    };
    for (k, v) in [
        ("AWS_REGION", region.clone()),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_EXECUTION_ENV", execution_env.to_string()),
    ] {
        if !v.is_empty() && !env.iter().any(|(n, _)| n == k) {
            env.push((k.to_string(), v));
        }
    }

    let mut lbl: HashMap<String, String> = c
        .docker_labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let cluster = a.task.cluster_arn.clone().unwrap_or_default();
    for (k, v) in [
        (labels::INSTALLATION, owner.installation.clone()),
        (labels::INSTANCE, owner.instance_arn.clone()),
        (labels::TASK, task_arn.clone()),
        (labels::CONTAINER, name.clone()),
        (labels::ECS_CLUSTER, cluster),
        (labels::ECS_TASK_ARN, task_arn.clone()),
        (labels::ECS_CONTAINER_NAME, name.clone()),
        (labels::ECS_FAMILY, td.family.clone().unwrap_or_default()),
        (labels::ECS_VERSION, td.revision.unwrap_or(0).to_string()),
    ] {
        lbl.insert(k.to_string(), v);
    }

    let ports = c
        .port_mappings
        .iter()
        .flatten()
        .filter_map(|pm| {
            Some(PortSpec {
                container_port: u16::try_from(pm.container_port?).ok()?,
                host_port: pm
                    .host_port
                    .and_then(|h| u16::try_from(h).ok())
                    .filter(|h| *h != 0),
                protocol: if pm.protocol == Some(TransportProtocol::Udp) {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
            })
        })
        .collect();

    let mut binds = Vec::new();
    for mp in c.mount_points.iter().flatten() {
        let src = mp.source_volume.clone().unwrap_or_default();
        let Some(v) = td
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name.as_deref() == Some(src.as_str()))
        else {
            continue;
        };
        let source = match v.host.as_ref().and_then(|h| h.source_path.clone()) {
            Some(path) => path,
            None => {
                let scope = v
                    .docker_volume_configuration
                    .as_ref()
                    .and_then(|d| d.scope)
                    .unwrap_or(Scope::Task);
                volume_name(a, &src, scope)
            }
        };
        let ro = if mp.read_only == Some(true) {
            ":ro"
        } else {
            ""
        };
        binds.push(format!(
            "{source}:{}{ro}",
            mp.container_path.clone().unwrap_or_default()
        ));
    }
    let volumes_from = c
        .volumes_from
        .iter()
        .flatten()
        .filter_map(|v| {
            let src = v.source_container.as_deref()?;
            Some(format!(
                "{}{}",
                docker_name(a, src),
                if v.read_only == Some(true) { ":ro" } else { "" }
            ))
        })
        .collect();
    let links = c
        .links
        .iter()
        .flatten()
        .map(|l| {
            let (target, alias) = l.split_once(':').unwrap_or((l, l));
            format!("{}:{alias}", docker_name(a, target))
        })
        .collect();

    let lp = c.linux_parameters.clone().unwrap_or_default();
    let caps = lp.capabilities.clone().unwrap_or_default();
    let log_driver = c.log_configuration.as_ref().map(|l| {
        let opts: HashMap<String, String> =
            l.options.clone().unwrap_or_default().into_iter().collect();
        match l.log_driver {
            // awslogs: the agent ships the json-file (see `awslogs`), which must not rotate under
            // it, whatever the daemon's default log options say. FireLens: kept local.
            LogDriver::Awslogs => (
                "json-file".to_string(),
                HashMap::from([("max-size".to_string(), AWSLOGS_MAX_FILE.to_string())]),
            ),
            LogDriver::Awsfirelens => ("json-file".to_string(), HashMap::new()),
            other => {
                let mut opts = opts;
                // secretOptions, resolved by the server, as options of the driver.
                for (k, v) in secrets.iter().flat_map(|s| s.log_options.iter()) {
                    opts.insert(k.clone(), v.clone());
                }
                (other.as_str().to_string(), opts)
            }
        }
    });

    let mut spec = ContainerSpec {
        name: docker_name(a, &name),
        image: c.image.clone().unwrap_or_default(),
        entrypoint: c.entry_point.clone(),
        command: ov
            .and_then(|o| o.command.clone())
            .or_else(|| c.command.clone()),
        env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        working_dir: c.working_directory.clone(),
        user: c.user.clone(),
        hostname: c.hostname.clone(),
        labels: lbl,
        memory_mib: ov.and_then(|o| o.memory).or(c.memory).map(i64::from),
        memory_reservation_mib: ov
            .and_then(|o| o.memory_reservation)
            .or(c.memory_reservation)
            .map(i64::from),
        // Docker's minimum is 2 shares; ECS passes 2 for a cpu of 0 too.
        cpu_shares: i64::from(ov.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0)).max(2),
        network_mode: mode.as_str().to_string(),
        ports,
        health: c.health_check.as_ref().map(|h| HealthSpec {
            test: h.command.clone(),
            interval: h.interval.unwrap_or(30).max(1) as u32,
            timeout: h.timeout.unwrap_or(5).max(1) as u32,
            retries: h.retries.unwrap_or(3).max(1) as u32,
            start_period: h.start_period.unwrap_or(0).max(0) as u32,
        }),
        binds,
        volumes_from,
        links,
        ulimits: c
            .ulimits
            .iter()
            .flatten()
            .map(|u| {
                (
                    u.name.as_str().to_string(),
                    i64::from(u.soft_limit),
                    i64::from(u.hard_limit),
                )
            })
            .collect(),
        init: lp.init_process_enabled == Some(true),
        cap_add: caps.add.clone().unwrap_or_default(),
        cap_drop: caps.drop.clone().unwrap_or_default(),
        readonly_rootfs: c.readonly_root_filesystem == Some(true),
        privileged: c.privileged == Some(true),
        shm_size_mib: lp.shared_memory_size.map(i64::from),
        tmpfs: lp
            .tmpfs
            .iter()
            .flatten()
            .map(|t| {
                let mut opts = t.mount_options.clone().unwrap_or_default();
                opts.push(format!("size={}m", t.size));
                (t.container_path.clone(), opts.join(","))
            })
            .collect(),
        dns: c.dns_servers.clone().unwrap_or_default(),
        dns_search: c.dns_search_domains.clone().unwrap_or_default(),
        extra_hosts: c
            .extra_hosts
            .iter()
            .flatten()
            .map(|h| format!("{}:{}", h.hostname, h.ip_address))
            .collect(),
        security_opt: c.docker_security_options.clone().unwrap_or_default(),
        sysctls: c
            .system_controls
            .iter()
            .flatten()
            .filter_map(|s| Some((s.namespace.clone()?, s.value.clone()?)))
            .collect(),
        open_stdin: c.interactive == Some(true),
        tty: c.pseudo_terminal == Some(true),
        log_driver,
        ipv4: None,
        mac: None,
        cgroup_parent: None,
        runtime: None,
    };
    if mode == NetworkMode::Awsvpc {
        // Every container joins the pause container's namespace: the task's interface.
        spec.network_mode = format!("container:{}", pause_name(a));
        spec.ports.clear();
        spec.hostname = None;
        spec.links.clear();
        spec.dns.clear();
        spec.dns_search.clear();
        spec.extra_hosts.clear();
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::model::{Task, TaskDefinition};

    fn assigned(td: serde_json::Value, task: serde_json::Value) -> AssignedTask {
        AssignedTask {
            firewall: None,
            task: serde_json::from_value::<Task>(task).unwrap(),
            task_definition: serde_json::from_value::<TaskDefinition>(td).unwrap(),
            secrets: Default::default(),
            secrets_error: None,
            credentials: None,
        }
    }

    #[test]
    fn containers_without_dns_servers_get_the_agents_in_their_own_namespace_only() {
        let servers = vec!["169.254.170.2".to_string()];
        let mut bridge = ContainerSpec {
            network_mode: "bridge".into(),
            ..ContainerSpec::default()
        };
        default_dns(&mut bridge, &servers);
        assert_eq!(bridge.dns, servers);
        let mut named = ContainerSpec {
            network_mode: "bridge".into(),
            dns: vec!["10.0.0.2".into()],
            ..ContainerSpec::default()
        };
        default_dns(&mut named, &servers);
        assert_eq!(named.dns, ["10.0.0.2"]);
        for mode in ["host", "container:pause"] {
            let mut s = ContainerSpec {
                network_mode: mode.into(),
                ..ContainerSpec::default()
            };
            default_dns(&mut s, &servers);
            assert!(s.dns.is_empty(), "{mode}");
        }
    }

    #[test]
    fn endpoint_variables_replace_the_tasks_unless_soft() {
        let mut env = vec![
            "AWS_ENDPOINT_URL=mine".to_string(),
            "ECS_AGENT_URI=x".into(),
        ];
        set_endpoint_env(
            &mut env,
            vec![
                ("AWS_ENDPOINT_URL".into(), "agent".into(), true),
                ("ECS_AGENT_URI".into(), "agent".into(), false),
                ("NEW".into(), "1".into(), false),
            ],
        );
        assert_eq!(
            env,
            vec!["AWS_ENDPOINT_URL=mine", "ECS_AGENT_URI=agent", "NEW=1"]
        );
    }

    #[test]
    fn maps_ecs_semantics_to_docker() {
        let a = assigned(
            serde_json::json!({"family":"web","revision":3,"volumes":[{"name":"data"},{"name":"logs","host":{"sourcePath":"/var/log"}},{"name":"shared","dockerVolumeConfiguration":{"scope":"shared","autoprovision":true}}],
              "containerDefinitions":[{"name":"app","image":"img:1","cpu":0,"memory":64,"memoryReservation":32,
                "environment":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
                "portMappings":[{"containerPort":80},{"containerPort":53,"hostPort":5353,"protocol":"udp"}],
                "mountPoints":[{"sourceVolume":"data","containerPath":"/d"},{"sourceVolume":"logs","containerPath":"/l","readOnly":true},{"sourceVolume":"shared","containerPath":"/s"}],
                "linuxParameters":{"initProcessEnabled":true,"capabilities":{"add":["NET_ADMIN"]}},
                "ulimits":[{"name":"nofile","softLimit":100,"hardLimit":200}],
                "healthCheck":{"command":["CMD-SHELL","true"],"interval":5}}]}),
            serde_json::json!({"taskArn":"arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef0123","clusterArn":"arn:aws:ecs:us-east-1:000000000000:cluster/c",
              "overrides":{"containerOverrides":[{"name":"app","environment":[{"name":"B","value":"3"}],"command":["x"]}]}}),
        );
        let owner = Owner {
            installation: "i".into(),
            instance_arn: "arn:ci".into(),
        };
        let c = &a.task_definition.container_definitions.as_ref().unwrap()[0];
        let s = container(&a, c, &owner);
        assert_eq!(s.name, "gantry-web-3-app-0123456789ab");
        assert_eq!(
            s.env,
            vec![
                "A=1",
                "B=3",
                "AWS_REGION=us-east-1",
                "AWS_DEFAULT_REGION=us-east-1",
                "AWS_EXECUTION_ENV=AWS_ECS_EC2"
            ]
        );
        assert_eq!(s.command, Some(vec!["x".to_string()]));
        assert_eq!(
            (s.memory_mib, s.memory_reservation_mib, s.cpu_shares),
            (Some(64), Some(32), 2)
        );
        assert_eq!(
            s.ports[0],
            PortSpec {
                container_port: 80,
                host_port: None,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(s.ports[1].protocol, Protocol::Udp);
        assert_eq!(
            s.binds,
            vec![
                "gantry-0123456789abcdef0123-data:/d",
                "/var/log:/l:ro",
                "shared:/s"
            ]
        );
        assert!(s.init);
        assert_eq!(
            s.labels[labels::TASK],
            "arn:aws:ecs:us-east-1:000000000000:task/c/0123456789abcdef0123"
        );
        assert_eq!(s.labels[labels::ECS_FAMILY], "web");
        assert_eq!(s.health.as_ref().unwrap().interval, 5);
        let vols = volumes(&a);
        assert_eq!(vols.len(), 2);
        assert!(vols[0].task_scoped && !vols[1].task_scoped);
    }

    #[test]
    fn task_ids_are_cut_at_characters() {
        assert_eq!(short_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("ééééééééééééé"), "éééééééééééé");
    }
}
