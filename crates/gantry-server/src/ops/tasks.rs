//! RunTask, StartTask, StopTask, DescribeTasks, ListTasks; and how agents' reports move tasks
//! forward.

use super::placement;
use super::{clusters, instances, task_definitions};
use crate::paginate::{max_results, page, Order};
use crate::state::{records, State, TaskRecord};
use crate::{now_secs, Server};
use gantry_api::model::*;
use gantry_api::taskdef::{parse_task_cpu, parse_task_memory, validate_tags};
use gantry_api::{ApiError, ErrorCode, TaskDefRef};
use gantry_core::Caller;
use gantry_scheduler::{check, Demand, Proto, Request};
use gantry_store::Txn;

/// What one task of a definition (with overrides) reserves on its instance.
pub fn demand_of(td: &TaskDefinition, ov: &TaskOverride) -> Result<Demand, ApiError> {
    let containers = td.container_definitions.as_deref().unwrap_or_default();
    let co = |name: &str| {
        ov.container_overrides
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
    };
    let mut cpu = 0i64;
    let mut mem = 0i64;
    let mut gpu = 0i64;
    let mut ports = Vec::new();
    for c in containers {
        let name = c.name.as_deref().unwrap_or_default();
        let o = co(name);
        cpu += i64::from(o.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0));
        let reservation = o
            .and_then(|o| o.memory_reservation)
            .or(c.memory_reservation);
        let hard = o.and_then(|o| o.memory).or(c.memory);
        mem += i64::from(reservation.or(hard).unwrap_or(0));
        for r in c.resource_requirements.iter().flatten() {
            if r.r#type == ResourceType::Gpu {
                let value = r.value.as_deref().unwrap_or_default();
                gpu += value.trim().parse::<i64>().map_err(|_| {
                    ApiError::invalid(format!("Invalid GPU count {value:?} in container {name}."))
                })?;
            }
        }
        if td.network_mode != Some(NetworkMode::Awsvpc) {
            for pm in c.port_mappings.iter().flatten() {
                if let Some(h) = pm.host_port.filter(|h| *h > 0) {
                    let proto = match pm.protocol {
                        Some(TransportProtocol::Udp) => Proto::Udp,
                        _ => Proto::Tcp,
                    };
                    ports.push((h as u16, proto));
                }
            }
        }
    }
    let task_cpu = ov.cpu.as_deref().or(td.cpu.as_deref());
    if let Some(s) = task_cpu {
        cpu = i64::from(
            parse_task_cpu(s)
                .ok_or_else(|| ApiError::invalid(format!("Invalid 'overrides.cpu' {s:?}.")))?,
        );
    }
    let task_mem = ov.memory.as_deref().or(td.memory.as_deref());
    if let Some(s) = task_mem {
        mem = i64::from(
            parse_task_memory(s)
                .ok_or_else(|| ApiError::invalid(format!("Invalid 'overrides.memory' {s:?}.")))?,
        );
    }
    Ok(Demand {
        cpu,
        memory: mem,
        gpu,
        ports,
        required_attributes: td
            .requires_attributes
            .iter()
            .flatten()
            .map(|a| a.name.clone())
            .collect(),
    })
}

fn check_overrides(td: &TaskDefinition, ov: &TaskOverride) -> Result<(), ApiError> {
    let names: Vec<&str> = td
        .container_definitions
        .iter()
        .flatten()
        .filter_map(|c| c.name.as_deref())
        .collect();
    for o in ov.container_overrides.iter().flatten() {
        let n = o.name.as_deref().unwrap_or_default();
        if !names.contains(&n) {
            return Err(ApiError::invalid(format!(
                "Invalid 'overrides.containerOverrides': the task definition has no container named {n:?}."
            )));
        }
        for (field, v) in [
            ("cpu", o.cpu),
            ("memory", o.memory),
            ("memoryReservation", o.memory_reservation),
        ] {
            if v.is_some_and(|v| v < 0) {
                return Err(ApiError::invalid(format!(
                    "Invalid 'overrides.containerOverrides.{field}': negative."
                )));
            }
        }
    }
    Ok(())
}

/// Everything RunTask and StartTask share.
struct Launch {
    cluster: String,
    td: TaskDefinition,
    overrides: TaskOverride,
    demand: Demand,
    launch_type: LaunchType,
    started_by: Option<String>,
    group: String,
    tags: Vec<Tag>,
    client_token: Option<String>,
    request: Request,
    service: Option<(String, String)>,
    awsvpc: Option<AwsVpcConfiguration>,
    capacity_provider: Option<String>,
}

fn new_task(server: &Server, st: &State, l: &Launch, instance_id: &str, now: f64) -> TaskRecord {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let arns = &server.arns;
    let task_arn = arns.task(&l.cluster, &id);
    let inst = st.instances.get(instance_id);
    let az = inst.and_then(|i| {
        i.instance
            .attributes
            .iter()
            .flatten()
            .find(|a| a.name == "ecs.availability-zone")
            .and_then(|a| a.value.clone())
    });
    let containers =
        l.td.container_definitions
            .iter()
            .flatten()
            .map(|c| {
                let name = c.name.clone().unwrap_or_default();
                let o = l
                    .overrides
                    .container_overrides
                    .iter()
                    .flatten()
                    .find(|o| o.name.as_ref() == Some(&name));
                Container {
                    container_arn: Some(arns.container(
                        &l.cluster,
                        &id,
                        &uuid::Uuid::new_v4().to_string(),
                    )),
                    task_arn: Some(task_arn.clone()),
                    name: Some(name),
                    image: c.image.clone(),
                    last_status: Some("PENDING".to_string()),
                    network_interfaces: Some(Vec::new()),
                    health_status: c.health_check.as_ref().map(|_| HealthStatus::Unknown),
                    cpu: Some(o.and_then(|o| o.cpu).or(c.cpu).unwrap_or(0).to_string()),
                    memory: o.and_then(|o| o.memory).or(c.memory).map(|m| m.to_string()),
                    memory_reservation: o
                        .and_then(|o| o.memory_reservation)
                        .or(c.memory_reservation)
                        .map(|m| m.to_string()),
                    ..Container::default()
                }
            })
            .collect();
    let mut overrides = l.overrides.clone();
    overrides.container_overrides.get_or_insert_with(Vec::new);
    overrides
        .inference_accelerator_overrides
        .get_or_insert_with(Vec::new);
    let task = Task {
        attachments: Some(Vec::new()),
        attributes: Some(vec![Attribute {
            name: "ecs.cpu-architecture".into(),
            value: inst
                .and_then(|i| {
                    i.instance
                        .attributes
                        .iter()
                        .flatten()
                        .find(|a| a.name == "ecs.cpu-architecture")
                })
                .and_then(|a| a.value.clone())
                .or_else(|| Some(std::env::consts::ARCH.replace("aarch64", "arm64"))),
            ..Attribute::default()
        }]),
        availability_zone: az,
        cluster_arn: Some(arns.cluster(&l.cluster)),
        container_instance_arn: inst.and_then(|i| i.instance.container_instance_arn.clone()),
        containers: Some(containers),
        cpu: l.td.cpu.clone().map(|_| l.demand.cpu.to_string()),
        memory: l.td.memory.clone().map(|_| l.demand.memory.to_string()),
        created_at: Some(now),
        desired_status: Some("RUNNING".to_string()),
        enable_execute_command: Some(false),
        group: Some(l.group.clone()),
        health_status: Some(HealthStatus::Unknown),
        last_status: Some("PROVISIONING".to_string()),
        launch_type: Some(l.launch_type),
        overrides: Some(overrides),
        started_by: l.started_by.clone(),
        tags: Some(l.tags.clone()),
        task_arn: Some(task_arn),
        task_definition_arn: l.td.task_definition_arn.clone(),
        version: Some(1),
        ..Task::default()
    };
    let mut task = task;
    task.capacity_provider_name = l.capacity_provider.clone();
    if l.launch_type == LaunchType::Fargate {
        // Fargate tasks run on capacity gantry manages: no container instance to show.
        task.container_instance_arn = None;
        task.capacity_provider_name = Some(
            l.capacity_provider
                .clone()
                .unwrap_or_else(|| "FARGATE".into()),
        );
        task.platform_version = Some("1.4.0".into());
        task.platform_family = Some("Linux".into());
        task.ephemeral_storage = Some(EphemeralStorage { size_in_gi_b: 20 });
    }
    TaskRecord {
        cluster: l.cluster.clone(),
        id,
        instance: instance_id.to_string(),
        task,
        demand_cpu: l.demand.cpu,
        demand_memory: l.demand.memory,
        demand_gpu: l.demand.gpu,
        security_groups: l
            .awsvpc
            .as_ref()
            .and_then(|c| c.security_groups.clone())
            .unwrap_or_default(),
        service: l.service.clone(),
        healthy_at: None,
        counted: false,
        draining: None,
        demand_ports: l.demand.ports.clone(),
        client_token: l.client_token.clone(),
    }
}

/// What RunTask, StartTask and the service scheduler ask for.
#[derive(Default)]
pub(crate) struct LaunchInput {
    pub(crate) cluster: Option<String>,
    pub(crate) task_definition: String,
    pub(crate) overrides: Option<TaskOverride>,
    pub(crate) launch_type: Option<LaunchType>,
    pub(crate) network_configuration: Option<NetworkConfiguration>,
    pub(crate) started_by: Option<String>,
    pub(crate) group: Option<String>,
    pub(crate) tags: Option<Vec<Tag>>,
    pub(crate) client_token: Option<String>,
    pub(crate) placement_strategy: Option<Vec<PlacementStrategy>>,
    pub(crate) placement_constraints: Option<Vec<PlacementConstraint>>,
    pub(crate) count: usize,
    /// The service and deployment id the tasks belong to.
    pub(crate) service: Option<(String, String)>,
    /// The capacity provider the tasks go to.
    pub(crate) capacity_provider: Option<String>,
}

fn prepare(server: &Server, st: &State, input: LaunchInput) -> Result<Launch, ApiError> {
    let LaunchInput {
        cluster,
        task_definition,
        overrides,
        launch_type,
        network_configuration,
        started_by,
        group,
        tags,
        client_token,
        placement_strategy,
        placement_constraints,
        count,
        service,
        capacity_provider,
    } = input;
    let task_definition = task_definition.as_str();
    let network_configuration = network_configuration.as_ref();
    let cluster = clusters::active(server, st, cluster.as_deref())?
        .cluster_name
        .clone()
        .unwrap_or_default();
    let r = TaskDefRef::parse(&server.arns, task_definition)?;
    let rec = task_definitions::resolve(st, &r)
        .ok_or_else(|| ApiError::client("Unable to find task definition."))?;
    let td = rec.task_definition.clone();
    if td.status != Some(TaskDefinitionStatus::Active) {
        return Err(ApiError::client(format!(
            "TaskDefinition is inactive: {task_definition}"
        )));
    }
    let launch_type = launch_type.unwrap_or(LaunchType::Ec2);
    match launch_type {
        LaunchType::Ec2 | LaunchType::External | LaunchType::Fargate => {}
        other => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedFeatureException,
                format!(
                "The {} launch type is not supported by gantry yet; use EC2, EXTERNAL or FARGATE.",
                other.as_str()
            ),
            ))
        }
    }
    let compat = td.compatibilities.as_deref().unwrap_or_default();
    let needed = match launch_type {
        LaunchType::External => Compatibility::External,
        LaunchType::Fargate => Compatibility::Fargate,
        _ => Compatibility::Ec2,
    };
    if !compat.contains(&needed) {
        return Err(ApiError::invalid(format!(
            "Task definition does not support launch_type {}.",
            launch_type.as_str()
        )));
    }
    let awsvpc = if td.network_mode == Some(NetworkMode::Awsvpc) {
        Some(super::network::validate(
            network_configuration,
            launch_type == LaunchType::Fargate,
        )?)
    } else {
        None
    };
    let overrides = overrides.unwrap_or_default();
    check_overrides(&td, &overrides)?;
    let demand = demand_of(&td, &overrides)?;
    if let Some(s) = &started_by {
        if s.len() > 128 {
            return Err(ApiError::invalid(
                "Invalid 'startedBy': at most 128 characters.",
            ));
        }
    }
    if let Some(t) = &client_token {
        if t.is_empty() || t.len() > 64 {
            return Err(ApiError::invalid(
                "Invalid 'clientToken': 1 to 64 characters.",
            ));
        }
    }
    let tags = tags.unwrap_or_default();
    validate_tags(&tags)?;
    let family = td.family.clone().unwrap_or_default();
    let group = group.unwrap_or_else(|| format!("family:{family}"));
    if group.is_empty() || group.len() > 255 {
        return Err(ApiError::invalid("Invalid 'group': 1 to 255 characters."));
    }
    let fargate = launch_type == LaunchType::Fargate;
    // Fargate ignores strategies and constraints: its tasks spread over zones.
    let strategies = match placement::strategies(placement_strategy.as_deref())? {
        _ if fargate => gantry_scheduler::default_strategies(),
        s if s.is_empty() => gantry_scheduler::default_strategies(),
        s => s,
    };
    let constraints = if fargate {
        Vec::new()
    } else {
        placement::constraints(placement_constraints.as_deref(), &td)?
    };
    let request = Request {
        demand: demand.clone(),
        count,
        strategies,
        constraints,
        group: group.clone(),
        seed: rand::random(),
    };
    Ok(Launch {
        cluster,
        td,
        overrides,
        demand,
        launch_type,
        started_by,
        group,
        tags,
        client_token,
        request,
        service,
        awsvpc,
        capacity_provider,
    })
}

fn describe_view(t: &TaskRecord, with_tags: bool) -> Task {
    let mut v = t.task.clone();
    if !with_tags {
        v.tags = None;
    }
    v
}

/// Commits tasks for `targets` (instance ids), re-checking each fit against the latest state.
/// Returns the created tasks and a failure per target that no longer fits.
fn commit_placements(
    server: &Server,
    st: &mut State,
    l: &Launch,
    targets: &[String],
) -> (Vec<Task>, Vec<Failure>, Txn) {
    let now = now_secs();
    let mut txn = Txn::new();
    let mut created = Vec::new();
    let mut failures = Vec::new();
    for id in targets {
        let Some(rec) = st.instances.get(id) else {
            continue;
        };
        let view = instances::placement_view(server, st, rec, now);
        if let Err(m) = check(&view, &l.request, 0) {
            failures.push(Failure {
                arn: Some(view.id.clone()),
                reason: Some(m.reason().to_string()),
                detail: None,
            });
            continue;
        }
        let mut t = new_task(server, st, l, id, now);
        if let Some(c) = &l.awsvpc {
            match super::network::allocate(st, c, &mut txn) {
                Ok(eni) => {
                    let ip = super::network::detail(&eni, "privateIPv4Address");
                    for c in t.task.containers.iter_mut().flatten() {
                        c.network_interfaces = Some(vec![NetworkInterface {
                            attachment_id: eni.id.clone(),
                            private_ipv4_address: ip.clone(),
                            ipv6_address: None,
                        }]);
                    }
                    t.task.attachments = Some(vec![eni]);
                    // Members changed: every firewalled task's rules may change.
                    super::security_groups::bump_firewalled(st);
                }
                Err(e) => {
                    failures.push(Failure {
                        arn: Some(view.id.clone()),
                        reason: Some(format!("RESOURCE:ENI ({})", e.message)),
                        detail: None,
                    });
                    continue;
                }
            }
        }
        txn = records::TASKS.put(txn, &t.id, &t);
        created.push(describe_view(&t, true));
        st.index_task(&t);
        st.tasks.insert(t.id.clone(), t);
        st.bump(id);
    }
    (created, failures, txn)
}

pub async fn run(
    server: &Server,
    req: RunTaskRequest,
    _: &Caller<'_>,
) -> Result<RunTaskResponse, ApiError> {
    let req_launch_type = req.launch_type;
    let count = req.count.unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(ApiError::invalid(
            "Invalid 'count': between 1 and 10 tasks can be run at once.",
        ));
    }
    let strategy = super::capacity_providers::requested(
        server,
        req.cluster.as_deref(),
        req.capacity_provider_strategy.as_ref(),
        req.launch_type,
    )?;
    if let Some(strategy) = strategy {
        server.read(|st| {
            let cluster = server
                .arns
                .cluster_name(req.cluster.as_deref())
                .unwrap_or_default();
            super::capacity_providers::check_strategy_in(st, &cluster, &strategy)
        })??;
        let parts = super::capacity_providers::split(&strategy, count as usize)
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(provider, n)| LaunchInput {
                cluster: req.cluster.clone(),
                task_definition: req.task_definition.clone(),
                overrides: req.overrides.clone(),
                launch_type: Some(super::capacity_providers::launch_type_for(&provider)),
                network_configuration: req.network_configuration.clone(),
                started_by: req.started_by.clone(),
                group: req.group.clone(),
                tags: req.tags.clone(),
                client_token: req.client_token.clone(),
                placement_strategy: req.placement_strategy.clone(),
                placement_constraints: req.placement_constraints.clone(),
                count: n,
                capacity_provider: Some(provider),
                ..LaunchInput::default()
            })
            .collect();
        let (tasks, failures) = launch_all(server, parts).await?;
        return Ok(RunTaskResponse {
            tasks: Some(tasks),
            failures: Some(failures),
        });
    }
    let (tasks, failures) = launch(
        server,
        LaunchInput {
            cluster: req.cluster,
            task_definition: req.task_definition,
            overrides: req.overrides,
            launch_type: req.launch_type,
            network_configuration: req.network_configuration,
            started_by: req.started_by,
            group: req.group,
            tags: req.tags,
            client_token: req.client_token,
            placement_strategy: req.placement_strategy,
            placement_constraints: req.placement_constraints,
            count: count as usize,
            ..LaunchInput::default()
        },
    )
    .await?;
    if tasks.is_empty() && failures.iter().any(|f| f.arn.is_none()) {
        if req_launch_type == Some(LaunchType::Fargate) {
            // ECS's answer when Fargate has no room; here: no agent offers Fargate capacity.
            let failure = Failure {
                arn: None,
                reason: Some("Capacity is unavailable at this time. Please try again later or in a different availability zone".into()),
                detail: Some("No host offers Fargate capacity: start an agent with --capacity fargate or both (gantry up does).".into()),
            };
            return Ok(RunTaskResponse {
                tasks: Some(Vec::new()),
                failures: Some(vec![failure]),
            });
        }
        return Err(ApiError::invalid(
            "No Container Instances were found in your cluster.",
        ));
    }
    Ok(RunTaskResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

/// Places and commits tasks: RunTask, and the service scheduler. Plans against the cluster's
/// snapshot outside the write lock; the commit re-checks each placement.
pub(crate) async fn launch(
    server: &Server,
    input: LaunchInput,
) -> Result<(Vec<Task>, Vec<Failure>), ApiError> {
    launch_all(server, vec![input]).await
}

/// The tasks an earlier call with the same clientToken made, if there was one.
fn already_launched(st: &State, l: &Launch) -> Option<Vec<Task>> {
    let tok = l.client_token.as_ref()?;
    let ids = st.client_tokens.get(&(l.cluster.clone(), tok.clone()))?;
    Some(
        ids.iter()
            .filter_map(|id| st.tasks.get(id))
            .map(|t| describe_view(t, true))
            .collect(),
    )
}

/// [`launch`] for several parts of one request (a capacity provider strategy's shares):
/// planned each on its pool, committed together in one transaction, and idempotent as a
/// whole by the parts' shared clientToken.
pub(crate) async fn launch_all(
    server: &Server,
    inputs: Vec<LaunchInput>,
) -> Result<(Vec<Task>, Vec<Failure>), ApiError> {
    type Planned = (Launch, Vec<String>, Vec<Failure>);
    let planned = server.read(|st| -> Result<Result<Vec<Planned>, Vec<Task>>, ApiError> {
        let mut planned = Vec::new();
        for input in inputs {
            let l = prepare(server, st, input)?;
            if let Some(tasks) = already_launched(st, &l) {
                return Ok(Err(tasks));
            }
            let now = now_secs();
            let mut cache = server.placement_cache();
            let pool = match (&l.capacity_provider, l.launch_type) {
                (_, LaunchType::Fargate) => crate::placement_cache::FARGATE_POOL.to_string(),
                (Some(p), _) => crate::placement_cache::provider_pool_key(&l.cluster, p),
                (None, _) => l.cluster.clone(),
            };
            let (snap, ids) = cache.snapshot(server, st, &pool, now);
            let plan = snap.place(&l.request);
            let targets: Vec<String> = plan
                .placements
                .iter()
                .filter_map(|&ix| ids.get(ix).cloned())
                .collect();
            let mut failures: Vec<Failure> = plan
                .failures
                .into_iter()
                .map(|(arn, m)| Failure {
                    arn: Some(arn),
                    reason: Some(m.reason().to_string()),
                    detail: None,
                })
                .collect();
            if ids.is_empty() {
                failures.push(Failure {
                    arn: None,
                    reason: Some("No Container Instances were found in your cluster.".to_string()),
                    detail: None,
                });
            }
            planned.push((l, targets, failures));
        }
        Ok(Ok(planned))
    })??;
    let planned = match planned {
        Ok(p) => p,
        Err(existing) => return Ok((existing, Vec::new())),
    };
    let plan_failures: Vec<Failure> = planned.iter().flat_map(|p| p.2.clone()).collect();
    let (tasks, mut failures) = server
        .write(move |st| {
            // A concurrent call with the same clientToken may have committed meanwhile.
            if let Some(tasks) = planned.first().and_then(|p| already_launched(st, &p.0)) {
                return Ok(((tasks, Vec::new()), Txn::new()));
            }
            let mut txn = Txn::new();
            let (mut created, mut failures) = (Vec::new(), Vec::new());
            for (launch, targets, _) in &planned {
                let (c, f, t) = commit_placements(server, st, launch, targets);
                created.extend(c);
                failures.extend(f);
                txn.compares.extend(t.compares);
                txn.ops.extend(t.ops);
            }
            Ok(((created, failures), txn))
        })
        .await?;
    for f in plan_failures {
        if !failures.iter().any(|x| x.arn == f.arn) {
            failures.push(f);
        }
    }
    Ok((tasks, failures))
}

pub async fn start(
    server: &Server,
    req: StartTaskRequest,
    _: &Caller<'_>,
) -> Result<StartTaskResponse, ApiError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid(
            "Invalid 'containerInstances': give between 1 and 10 container instances.",
        ));
    }
    let (tasks, failures) = server
        .write(move |st| {
            let l = prepare(
                server,
                st,
                LaunchInput {
                    cluster: req.cluster,
                    task_definition: req.task_definition,
                    overrides: req.overrides,
                    network_configuration: req.network_configuration,
                    started_by: req.started_by,
                    group: req.group,
                    tags: req.tags,
                    count: 1,
                    ..LaunchInput::default()
                },
            )?;
            let mut targets = Vec::new();
            let mut missing = Vec::new();
            for ident in &req.container_instances {
                match instances::find(server, st, &l.cluster, ident) {
                    Some(r) => targets.push(r.id.clone()),
                    None => missing.push(Failure {
                        arn: Some(ident.clone()),
                        reason: Some("MISSING".into()),
                        detail: None,
                    }),
                }
            }
            let (created, mut failures, txn) = commit_placements(server, st, &l, &targets);
            failures.extend(missing);
            Ok(((created, failures), txn))
        })
        .await?;
    Ok(StartTaskResponse {
        tasks: Some(tasks),
        failures: Some(failures),
    })
}

/// Finds a task of `cluster` by id or ARN.
pub(super) fn find_id(server: &Server, st: &State, cluster: &str, ident: &str) -> Option<String> {
    let id = server.arns.resource_id("task", ident)?;
    st.tasks
        .get(id)
        .filter(|t| t.cluster == cluster)
        .map(|t| t.id.clone())
}

/// Sets a task's desired status to STOPPED (once: the first reason and stop code win).
pub fn request_stop(
    st: &mut State,
    id: &str,
    code: TaskStopCode,
    reason: String,
    now: f64,
) -> Option<TaskRecord> {
    let t = st.tasks.get_mut(id)?;
    if t.desired_status() != "STOPPED" {
        t.task.desired_status = Some("STOPPED".into());
        t.task.stop_code.get_or_insert(code);
        t.task.stopped_reason.get_or_insert(reason);
        t.task.stopping_at.get_or_insert(now);
        t.task.version = Some(t.task.version.unwrap_or(1) + 1);
    }
    let t = t.clone();
    st.bump(&t.instance);
    Some(t)
}

pub async fn stop(
    server: &Server,
    req: StopTaskRequest,
    _: &Caller<'_>,
) -> Result<StopTaskResponse, ApiError> {
    let reason = req
        .reason
        .clone()
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "Task stopped by user".to_string());
    if reason.len() > 255 {
        return Err(ApiError::invalid(
            "Invalid 'reason': at most 255 characters.",
        ));
    }
    let t = server
        .write(move |st| {
            let cluster = clusters::active(server, st, req.cluster.as_deref())?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let id = find_id(server, st, &cluster, &req.task)
                .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
            let t = request_stop(st, &id, TaskStopCode::UserInitiated, reason, now_secs())
                .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
            Ok((
                describe_view(&t, true),
                records::TASKS.put(Txn::new(), &id, &t),
            ))
        })
        .await?;
    Ok(StopTaskResponse { task: Some(t) })
}

pub async fn describe(
    server: &Server,
    req: DescribeTasksRequest,
    _: &Caller<'_>,
) -> Result<DescribeTasksResponse, ApiError> {
    if req.tasks.is_empty() || req.tasks.len() > 100 {
        return Err(ApiError::invalid(
            "Invalid 'tasks': give between 1 and 100 tasks.",
        ));
    }
    let with_tags = req.include.unwrap_or_default().contains(&TaskField::Tags);
    server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for ident in &req.tasks {
            match find_id(server, st, &cluster, ident).and_then(|id| st.tasks.get(&id)) {
                Some(t) => tasks.push(describe_view(t, with_tags)),
                None => failures.push(Failure {
                    arn: Some(if ident.starts_with("arn:") {
                        ident.clone()
                    } else {
                        server.arns.task(&cluster, ident)
                    }),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeTasksResponse {
            tasks: Some(tasks),
            failures: Some(failures),
        })
    })?
}

pub async fn list(
    server: &Server,
    req: ListTasksRequest,
    _: &Caller<'_>,
) -> Result<ListTasksResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 100)?;
    // A service is named by its name or ARN.
    let service_name = req
        .service_name
        .as_deref()
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_string());
    let desired = req.desired_status.unwrap_or(DesiredStatus::Running);
    let arns: Vec<String> = server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        let instance = match &req.container_instance {
            None => None,
            Some(ci) => Some(
                instances::find(server, st, &cluster, ci)
                    .map(|r| r.id.clone())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("Container instance {ci} not found."))
                    })?,
            ),
        };
        let family = req.family.clone();
        let mut v: Vec<String> = st
            .tasks
            .values()
            .filter(|t| t.cluster == cluster)
            .filter(|t| instance.as_ref().is_none_or(|i| *i == t.instance))
            .filter(|t| match desired {
                DesiredStatus::Running => t.desired_status() == "RUNNING",
                DesiredStatus::Stopped => t.desired_status() == "STOPPED",
                DesiredStatus::Pending => false,
            })
            .filter(|t| {
                req.started_by
                    .as_ref()
                    .is_none_or(|s| t.task.started_by.as_ref() == Some(s))
            })
            .filter(|t| {
                service_name
                    .as_ref()
                    .is_none_or(|s| t.service.as_ref().is_some_and(|(n, _)| n == s))
            })
            .filter(|t| {
                req.launch_type
                    .is_none_or(|l| t.task.launch_type == Some(l))
            })
            .filter(|t| {
                family.as_ref().is_none_or(|f| {
                    t.task
                        .task_definition_arn
                        .as_deref()
                        .and_then(|a| a.rsplit_once("task-definition/"))
                        .and_then(|(_, fr)| fr.rsplit_once(':'))
                        .is_some_and(|(fam, _)| fam == f)
                })
            })
            .filter_map(|t| t.task.task_arn.clone())
            .collect();
        v.sort();
        Ok::<_, ApiError>(v)
    })??;
    let p = page(
        arns,
        String::clone,
        Order::Asc,
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(ListTasksResponse {
        task_arns: Some(p.items),
        next_token: p.next_token,
    })
}

/// Starts one task on each of `instances` (ids), re-checking fit: StartTask's path, used by
/// DAEMON services.
pub(crate) async fn launch_on(
    server: &Server,
    input: LaunchInput,
    instances: Vec<String>,
) -> Result<(Vec<Task>, Vec<Failure>), ApiError> {
    server
        .write(move |st| {
            let l = prepare(server, st, input)?;
            let (created, failures, txn) = commit_placements(server, st, &l, &instances);
            Ok(((created, failures), txn))
        })
        .await
}
