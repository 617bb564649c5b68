//! CreateService, UpdateService, DeleteService, DescribeServices, ListServices. The service
//! scheduler (crate::services) does the work; these operations change what it aims for.

use super::service_links::{
    check_load_balancer_containers, check_load_balancers, check_service_registries,
    replace_with_former, task_definition,
};
use super::{clusters, placement, task_definitions};
use crate::paginate::{max_results, page, Order};
use crate::state::{records, ServiceRecord, State};
use crate::{now_secs, Server};
use gantry_api::model::*;
use gantry_api::taskdef::{valid_name, validate_tags};
use gantry_api::{ApiError, ErrorCode, TaskDefRef};
use gantry_core::Caller;
use gantry_store::Txn;

/// At most this many events are kept per service (newest first), as ECS shows.
pub const MAX_EVENTS: usize = 100;

/// A new deployment id in ECS's form.
pub fn deployment_id() -> String {
    let n: u64 = rand::random::<u64>() % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    format!("ecs-svc/{n}")
}

/// Adds an event, newest first.
pub fn event(rec: &mut ServiceRecord, message: String) {
    event_at(rec, message, now_secs())
}

/// Adds an event made at `now`, newest first (the newest [`MAX_EVENTS`] are kept).
pub fn event_at(rec: &mut ServiceRecord, message: String, now: f64) {
    let events = rec.service.events.get_or_insert_with(Vec::new);
    events.insert(
        0,
        ServiceEvent {
            id: Some(uuid::Uuid::new_v4().to_string()),
            created_at: Some(now),
            message: Some(message),
        },
    );
    events.truncate(MAX_EVENTS);
}

fn new_deployment(rec: &ServiceRecord, task_definition: &str, now: f64) -> Deployment {
    let id = deployment_id();
    Deployment {
        id: Some(id.clone()),
        status: Some("PRIMARY".into()),
        task_definition: Some(task_definition.to_string()),
        desired_count: rec.service.desired_count,
        pending_count: Some(0),
        running_count: Some(0),
        failed_tasks: Some(0),
        created_at: Some(now),
        updated_at: Some(now),
        launch_type: rec.service.launch_type,
        rollout_state: Some(DeploymentRolloutState::InProgress),
        rollout_state_reason: Some(format!("ECS deployment {id} in progress.")),
        ..Deployment::default()
    }
}

/// Makes a new PRIMARY deployment of `task_definition`; the current one becomes ACTIVE.
pub fn deploy(rec: &mut ServiceRecord, task_definition: &str, now: f64) {
    for d in rec.service.deployments.iter_mut().flatten() {
        if d.status.as_deref() == Some("PRIMARY") {
            d.status = Some("ACTIVE".into());
            d.updated_at = Some(now);
        }
    }
    let d = new_deployment(rec, task_definition, now);
    rec.service
        .deployments
        .get_or_insert_with(Vec::new)
        .insert(0, d);
    rec.service.task_definition = Some(task_definition.to_string());
    rec.start_failures = 0;
    rec.next_launch_at = 0.0;
    rec.steady = false;
}

fn resolve_td(server: &Server, st: &State, ident: &str) -> Result<String, ApiError> {
    let r = TaskDefRef::parse(&server.arns, ident)?;
    let rec = task_definitions::resolve(st, &r)
        .ok_or_else(|| ApiError::client("Unable to find task definition."))?;
    if rec.status() != TaskDefinitionStatus::Active {
        return Err(ApiError::client(format!(
            "TaskDefinition is inactive: {ident}"
        )));
    }
    let td = &rec.task_definition;
    Ok(td.task_definition_arn.clone().unwrap_or_default())
}

fn check_deployment_configuration(
    c: &DeploymentConfiguration,
    daemon: bool,
) -> Result<(), ApiError> {
    let (min, max) = (
        c.minimum_healthy_percent.unwrap_or(0),
        c.maximum_percent.unwrap_or(100),
    );
    if !(0..=100).contains(&min) {
        return Err(ApiError::invalid(
            "Invalid 'deploymentConfiguration.minimumHealthyPercent': between 0 and 100.",
        ));
    }
    if daemon && max != 100 {
        return Err(ApiError::invalid(
            "Invalid 'deploymentConfiguration.maximumPercent': a DAEMON service must use 100.",
        ));
    }
    if !(100..=200).contains(&max) || max < min {
        return Err(ApiError::invalid(
            "Invalid 'deploymentConfiguration.maximumPercent': between 100 and 200, and at least minimumHealthyPercent.",
        ));
    }
    Ok(())
}

fn find<'a>(
    server: &Server,
    st: &'a State,
    cluster: &str,
    ident: &str,
) -> Option<&'a ServiceRecord> {
    let name = if ident.starts_with("arn:") {
        server
            .arns
            .resource(ident)?
            .strip_prefix("service/")?
            .rsplit('/')
            .next()?
    } else {
        ident
    };
    st.services.get(&(cluster.to_string(), name.to_string()))
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::ServiceNotFoundException, "Service not found.")
}

/// The key of the ACTIVE service `ident` in `cluster`, the one a change applies to.
fn active_key(
    server: &Server,
    st: &State,
    cluster: &str,
    ident: &str,
) -> Result<(String, String), ApiError> {
    find(server, st, cluster, ident)
        .filter(|s| s.status() == "ACTIVE")
        .map(|s| (s.cluster.clone(), s.name.clone()))
        .ok_or_else(not_found)
}

/// The service as DescribeServices shows it, with live counts.
pub fn view(st: &State, rec: &ServiceRecord, with_tags: bool) -> Service {
    let mut s = rec.service.clone();
    let mut running = 0;
    let mut pending = 0;
    let mut per_deployment: std::collections::HashMap<&str, (i32, i32)> = Default::default();
    for t in st
        .service_tasks(&rec.cluster, &rec.name)
        .filter(|t| !t.is_stopped())
    {
        let Some((svc, dep)) = &t.service else {
            continue;
        };
        if *svc != rec.name || t.desired_status() == "STOPPED" {
            continue;
        }
        let e = per_deployment.entry(dep.as_str()).or_default();
        if t.state() == crate::state::TaskState::Running {
            running += 1;
            e.0 += 1;
        } else if t.is_pending() {
            pending += 1;
            e.1 += 1;
        }
    }
    s.running_count = Some(running);
    s.pending_count = Some(pending);
    for d in s.deployments.iter_mut().flatten() {
        let (r, p) = per_deployment
            .get(d.id.as_deref().unwrap_or_default())
            .copied()
            .unwrap_or_default();
        d.running_count = Some(r);
        d.pending_count = Some(p);
    }
    if !with_tags {
        s.tags = None;
    }
    s
}

pub async fn create(
    server: &Server,
    req: CreateServiceRequest,
    who: &Caller<'_>,
) -> Result<CreateServiceResponse, ApiError> {
    if !valid_name(&req.service_name) {
        return Err(ApiError::invalid(
            "Invalid 'serviceName': up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.",
        ));
    }
    let daemon = req.scheduling_strategy == Some(SchedulingStrategy::Daemon);
    let desired = match (daemon, req.desired_count) {
        (true, Some(_)) => {
            return Err(ApiError::invalid(
                "Invalid 'desiredCount': a DAEMON service takes none.",
            ))
        }
        (true, None) => 0,
        (false, Some(n)) if n >= 0 => n,
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "Invalid 'desiredCount': must not be negative.",
            ))
        }
        (false, None) => {
            return Err(ApiError::invalid(
                "Invalid 'desiredCount': a REPLICA service needs one.",
            ))
        }
    };
    let strategy = super::capacity_providers::requested(
        server,
        req.cluster.as_deref(),
        req.capacity_provider_strategy.as_ref(),
        req.launch_type,
    )?;
    // A DAEMON service runs on every instance: no strategy of its own, nor the cluster's.
    let strategy = match (daemon, strategy) {
        (true, Some(_))
            if req
                .capacity_provider_strategy
                .as_ref()
                .is_some_and(|s| !s.is_empty()) =>
        {
            return Err(ApiError::invalid(
                "Invalid 'capacityProviderStrategy': a DAEMON service takes none.",
            ))
        }
        (true, _) => None,
        (false, s) => s,
    };
    let load_balancers = req.load_balancers.clone().unwrap_or_default();
    check_load_balancers(server, &load_balancers)?;
    let registries = req.service_registries.clone().unwrap_or_default();
    if let Some(c) = &req.deployment_controller {
        if c.r#type != DeploymentControllerType::Ecs {
            return Err(ApiError::new(
                ErrorCode::UnsupportedFeatureException,
                "Only the ECS deployment controller is supported.",
            ));
        }
    }
    let fargate_strategy = strategy.as_ref().is_some_and(|s| {
        s.iter().all(|i| {
            super::capacity_providers::launch_type_for(&i.capacity_provider) == LaunchType::Fargate
        })
    });
    let launch_type = req.launch_type.unwrap_or(if fargate_strategy {
        LaunchType::Fargate
    } else {
        LaunchType::Ec2
    });
    if !matches!(
        launch_type,
        LaunchType::Ec2 | LaunchType::External | LaunchType::Fargate
    ) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedFeatureException,
            format!(
                "The {} launch type is not supported by gantry yet; use EC2 or EXTERNAL.",
                launch_type.as_str()
            ),
        ));
    }
    let mut dc = req.deployment_configuration.clone().unwrap_or_default();
    dc.maximum_percent
        .get_or_insert(if daemon { 100 } else { 200 });
    dc.minimum_healthy_percent
        .get_or_insert(if daemon { 0 } else { 100 });
    dc.deployment_circuit_breaker
        .get_or_insert(DeploymentCircuitBreaker {
            enable: false,
            rollback: false,
            ..Default::default()
        });
    check_deployment_configuration(&dc, daemon)?;
    if daemon
        && req
            .placement_strategy
            .as_ref()
            .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::invalid(
            "Invalid 'placementStrategy': a DAEMON service takes none.",
        ));
    }
    placement::strategies(req.placement_strategy.as_deref())?;
    let tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    let principal = who.principal().arn.clone();
    let now = now_secs();
    let s = server
        .write(move |st| {
            let cluster = clusters::active(server, st, req.cluster.as_deref())?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let td_arn = resolve_td(
                server,
                st,
                req.task_definition.as_deref().unwrap_or_default(),
            )?;
            let td = task_definition(st, &td_arn);
            placement::constraints(req.placement_constraints.as_deref(), &td)?;
            check_load_balancer_containers(&load_balancers, &td)?;
            check_service_registries(server, &registries, &td)?;
            if let Some(s) = &strategy {
                super::capacity_providers::check_strategy_in(st, &cluster, s)?;
            }
            if td.network_mode == Some(NetworkMode::Awsvpc) {
                super::network::validate(
                    req.network_configuration.as_ref(),
                    launch_type == LaunchType::Fargate,
                )?;
            }
            let key = (cluster.clone(), req.service_name.clone());
            if let Some(existing) = st.services.get(&key).filter(|s| s.status() != "INACTIVE") {
                return Err(ApiError::invalid(format!(
                    "Creation of service was not idempotent: service {} already exists ({}).",
                    req.service_name,
                    existing.status()
                )));
            }
            let service = Service {
                service_arn: Some(format!(
                    "arn:aws:ecs:{}:{}:service/{cluster}/{}",
                    server.config.region, server.config.account_id, req.service_name
                )),
                service_name: Some(req.service_name.clone()),
                cluster_arn: Some(server.arns.cluster(&cluster)),
                load_balancers: Some(load_balancers.clone()),
                service_registries: Some(registries.clone()),
                status: Some("ACTIVE".into()),
                desired_count: Some(desired),
                running_count: Some(0),
                pending_count: Some(0),
                launch_type: if strategy.is_some() {
                    None
                } else {
                    Some(launch_type)
                },
                capacity_provider_strategy: strategy.clone(),
                task_definition: Some(td_arn.clone()),
                deployment_configuration: Some(dc),
                deployments: Some(Vec::new()),
                events: Some(Vec::new()),
                created_at: Some(now),
                placement_constraints: Some(req.placement_constraints.clone().unwrap_or_default()),
                placement_strategy: Some(req.placement_strategy.clone().unwrap_or_default()),
                network_configuration: req.network_configuration.clone(),
                health_check_grace_period_seconds: req.health_check_grace_period_seconds,
                scheduling_strategy: Some(if daemon {
                    SchedulingStrategy::Daemon
                } else {
                    SchedulingStrategy::Replica
                }),
                deployment_controller: Some(DeploymentController {
                    r#type: DeploymentControllerType::Ecs,
                }),
                tags: Some(tags),
                created_by: Some(principal),
                enable_ecs_managed_tags: Some(req.enable_ecs_managed_tags.unwrap_or(false)),
                propagate_tags: Some(req.propagate_tags.unwrap_or(PropagateTags::None)),
                enable_execute_command: Some(false),
                ..Service::default()
            };
            let mut rec = ServiceRecord {
                cluster: cluster.clone(),
                name: req.service_name.clone(),
                service,
                last_completed: None,
                start_failures: 0,
                next_launch_at: 0.0,
                steady: false,
                former_load_balancers: Vec::new(),
                former_registries: Vec::new(),
            };
            deploy(&mut rec, &td_arn, now);
            let txn = records::SERVICES.put(
                Txn::new(),
                &records::service_id(&cluster, &req.service_name),
                &rec,
            );
            let v = view(st, &rec, true);
            st.services.insert(key, rec);
            Ok((v, txn))
        })
        .await?;
    server.nudge_services();
    Ok(CreateServiceResponse { service: Some(s) })
}

pub async fn update(
    server: &Server,
    req: UpdateServiceRequest,
    _: &Caller<'_>,
) -> Result<UpdateServiceResponse, ApiError> {
    if req.desired_count.is_some_and(|n| n < 0) {
        return Err(ApiError::invalid(
            "Invalid 'desiredCount': must not be negative.",
        ));
    }
    let strategy = req
        .capacity_provider_strategy
        .clone()
        .filter(|c| !c.is_empty());
    if let Some(s) = &req.placement_strategy {
        placement::strategies(Some(s))?;
    }
    if let Some(lbs) = &req.load_balancers {
        check_load_balancers(server, lbs)?;
    }
    let now = now_secs();
    let s = server
        .write(move |st| {
            let cluster = clusters::active(server, st, req.cluster.as_deref())?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let key = active_key(server, st, &cluster, &req.service)?;
            let new_td = match &req.task_definition {
                Some(t) => Some(resolve_td(server, st, t)?),
                None => None,
            };
            if let Some(s) = &strategy {
                super::capacity_providers::check_strategy_in(st, &cluster, s)?;
            }
            if req.load_balancers.is_some() || req.service_registries.is_some() {
                // Checked against the task definition the service is to run.
                let arn = match &new_td {
                    Some(t) => t.clone(),
                    None => st
                        .services
                        .get(&key)
                        .and_then(|r| r.service.task_definition.clone())
                        .unwrap_or_default(),
                };
                let td = task_definition(st, &arn);
                if let Some(lbs) = &req.load_balancers {
                    check_load_balancer_containers(lbs, &td)?;
                }
                if let Some(regs) = &req.service_registries {
                    check_service_registries(server, regs, &td)?;
                }
            }
            let rec = st.services.get_mut(&key).ok_or_else(not_found)?;
            let daemon = rec.service.scheduling_strategy == Some(SchedulingStrategy::Daemon);
            if let Some(n) = req.desired_count {
                if daemon {
                    return Err(ApiError::invalid(
                        "Invalid 'desiredCount': a DAEMON service takes none.",
                    ));
                }
                rec.service.desired_count = Some(n);
                rec.steady = false;
            }
            if let Some(dc) = &req.deployment_configuration {
                let mut merged = rec
                    .service
                    .deployment_configuration
                    .clone()
                    .unwrap_or_default();
                if dc.maximum_percent.is_some() {
                    merged.maximum_percent = dc.maximum_percent;
                }
                if dc.minimum_healthy_percent.is_some() {
                    merged.minimum_healthy_percent = dc.minimum_healthy_percent;
                }
                if dc.deployment_circuit_breaker.is_some() {
                    merged.deployment_circuit_breaker = dc.deployment_circuit_breaker.clone();
                }
                check_deployment_configuration(&merged, daemon)?;
                rec.service.deployment_configuration = Some(merged);
            }
            if let Some(c) = &req.placement_constraints {
                rec.service.placement_constraints = Some(c.clone());
            }
            if let Some(n) = &req.network_configuration {
                super::network::validate(
                    Some(n),
                    rec.service.launch_type == Some(LaunchType::Fargate),
                )?;
                rec.service.network_configuration = Some(n.clone());
            }
            if let Some(s) = &req.placement_strategy {
                rec.service.placement_strategy = Some(s.clone());
            }
            if req.health_check_grace_period_seconds.is_some() {
                rec.service.health_check_grace_period_seconds =
                    req.health_check_grace_period_seconds;
            }
            let mut redeploy = req.force_new_deployment == Some(true);
            // New load balancers or registries, as ECS: a new deployment whose tasks join them;
            // the older tasks leave the old ones as they stop.
            if let Some(lbs) = &req.load_balancers {
                redeploy |= replace_with_former(
                    &mut rec.service.load_balancers,
                    &mut rec.former_load_balancers,
                    lbs,
                );
            }
            if let Some(regs) = &req.service_registries {
                redeploy |= replace_with_former(
                    &mut rec.service.service_registries,
                    &mut rec.former_registries,
                    regs,
                );
            }
            if let Some(s) = &strategy {
                let had = rec.service.capacity_provider_strategy.as_ref();
                if had.is_none() && !redeploy {
                    return Err(ApiError::invalid(
                        "Moving a service from a launch type to a capacity provider strategy needs forceNewDeployment.",
                    ));
                }
                if had != Some(s) {
                    rec.service.capacity_provider_strategy = Some(s.clone());
                    rec.service.launch_type = None;
                    redeploy = true;
                }
            }
            let current = rec.service.task_definition.clone().unwrap_or_default();
            match new_td {
                Some(td) if td != current => deploy(rec, &td, now),
                _ if redeploy => deploy(rec, &current, now),
                _ => {}
            }
            let rec = rec.clone();
            let txn = records::SERVICES.put(Txn::new(), &records::service_id(&rec.cluster, &rec.name), &rec);
            Ok((view(st, &rec, true), txn))
        })
        .await?;
    server.nudge_services();
    Ok(UpdateServiceResponse { service: Some(s) })
}

pub async fn delete(
    server: &Server,
    req: DeleteServiceRequest,
    _: &Caller<'_>,
) -> Result<DeleteServiceResponse, ApiError> {
    let force = req.force.unwrap_or(false);
    let s = server
        .write(move |st| {
            let cluster = clusters::active(server, st, req.cluster.as_deref())?.cluster_name.clone().unwrap_or_default();
            let key = active_key(server, st, &cluster, &req.service)?;
            let rec = st.services.get_mut(&key).ok_or_else(not_found)?;
            let replica = rec.service.scheduling_strategy != Some(SchedulingStrategy::Daemon);
            if replica && rec.service.desired_count.unwrap_or(0) > 0 && !force {
                return Err(ApiError::invalid(
                    "The service cannot be stopped while it is scaled above 0. Set desiredCount to 0 first, or delete with force.",
                ));
            }
            rec.service.desired_count = Some(0);
            rec.service.status = Some("DRAINING".into());
            let rec = rec.clone();
            let txn = records::SERVICES.put(Txn::new(), &records::service_id(&rec.cluster, &rec.name), &rec);
            Ok((view(st, &rec, true), txn))
        })
        .await?;
    server.nudge_services();
    Ok(DeleteServiceResponse { service: Some(s) })
}

pub async fn describe(
    server: &Server,
    req: DescribeServicesRequest,
    _: &Caller<'_>,
) -> Result<DescribeServicesResponse, ApiError> {
    if req.services.is_empty() || req.services.len() > 10 {
        return Err(ApiError::invalid(
            "Invalid 'services': give between 1 and 10 services.",
        ));
    }
    let with_tags = req
        .include
        .unwrap_or_default()
        .contains(&ServiceField::Tags);
    server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for ident in &req.services {
            match find(server, st, &cluster, ident) {
                Some(rec) => services.push(view(st, rec, with_tags)),
                None => failures.push(Failure {
                    arn: Some(if ident.starts_with("arn:") {
                        ident.clone()
                    } else {
                        format!(
                            "arn:aws:ecs:{}:{}:service/{cluster}/{ident}",
                            server.config.region, server.config.account_id
                        )
                    }),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeServicesResponse {
            services: Some(services),
            failures: Some(failures),
        })
    })?
}

pub async fn list(
    server: &Server,
    req: ListServicesRequest,
    _: &Caller<'_>,
) -> Result<ListServicesResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 10)?;
    let arns: Vec<String> = server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        Ok::<_, ApiError>(
            st.services
                .values()
                .filter(|s| s.cluster == cluster && s.status() != "INACTIVE")
                .filter(|s| {
                    req.launch_type
                        .is_none_or(|l| s.service.launch_type == Some(l))
                })
                .filter(|s| {
                    req.scheduling_strategy
                        .is_none_or(|x| s.service.scheduling_strategy == Some(x))
                })
                .filter_map(|s| s.service.service_arn.clone())
                .collect(),
        )
    })??;
    let p = page(
        arns,
        String::clone,
        Order::Asc,
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(ListServicesResponse {
        service_arns: Some(p.items),
        next_token: p.next_token,
    })
}
