//! The reconcilers: level-triggered loops, each a pure step from a snapshot of the state and
//! the injected clock's `now` to the actions to take ([`service`], [`liveness`],
//! [`housekeeping`]), committed here, in one place per loop. Safe to run at any time, after
//! any crash: each round looks at the state as it is and takes the next steps.

pub mod credentials;
pub mod housekeeping;
pub mod liveness;
pub mod registries;
pub mod service;

use crate::ops::services::event;
use crate::ops::tasks::{launch, launch_on, request_stop, LaunchInput};
use crate::state::{records, State, TaskRecord, TaskState};
use crate::{Server, ServerConfig};
use gantry_api::model::*;
use gantry_api::ApiError;
use gantry_core::TargetState;
use gantry_store::Txn;
use service::{Launch, LbHealth, ServiceView, TaskView};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The timings the steps apply, in seconds (ECS's values by default, all settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    pub healthy_after: f64,
    pub throttle_base: f64,
    pub throttle_cap: f64,
    pub agent_timeout: f64,
    pub lost_timeout: f64,
    pub lost_grace: f64,
    pub task_retention: f64,
}

impl Timing {
    pub fn of(c: &ServerConfig) -> Timing {
        Timing {
            healthy_after: c.healthy_after.as_secs_f64(),
            throttle_base: c.throttle_base.as_secs_f64(),
            throttle_cap: c.throttle_cap.as_secs_f64(),
            agent_timeout: c.agent_timeout.as_secs_f64(),
            lost_timeout: c.lost_timeout.as_secs_f64(),
            lost_grace: c.lost_grace.as_secs_f64(),
            task_retention: c.task_retention.as_secs_f64(),
        }
    }
}

/// The service scheduler and instance liveness: every `service_interval`, or at once when an
/// API call nudges it. Runs forever.
pub async fn run_services(server: Arc<Server>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(server.config.service_interval) => {}
            _ = server.service_nudge.notified() => {}
        }
        let keys: Vec<(String, String)> = match server.read(|st| {
            st.services
                .iter()
                .filter(|(_, s)| s.status() != "INACTIVE")
                .map(|(k, _)| k.clone())
                .collect()
        }) {
            Ok(k) => k,
            Err(_) => continue,
        };
        if let Err(e) = liveness_round(&server).await {
            tracing::warn!(error = %e, "checking for lost instances failed");
        }
        task_credentials_round(&server).await;
        for key in keys {
            if let Err(e) = service_round(&server, &key).await {
                tracing::warn!(service = %key.1, error = %e, "service reconcile failed");
            }
        }
    }
}

/// Ends the task-role sessions of tasks that have stopped. Returns how many sessions ended.
pub async fn task_credentials_round(server: &Server) -> usize {
    let Some(access) = &server.config.task_access else {
        return 0;
    };
    let holding = access.roles.tasks();
    if holding.is_empty() {
        return 0;
    }
    let ended: Vec<String> = match server.read(|st| {
        credentials::ended(&holding, |arn| {
            let id = arn.rsplit('/').next()?;
            st.tasks
                .get(id)
                .filter(|t| t.task.task_arn.as_deref() == Some(arn))
                .map(TaskRecord::is_stopped)
        })
        .into_iter()
        .map(str::to_string)
        .collect()
    }) {
        Ok(e) => e,
        Err(_) => return 0,
    };
    let mut n = 0;
    for arn in ended {
        match access.roles.revoke(&arn).await {
            Ok(k) => {
                tracing::info!(task = %arn, sessions = k, "the task has stopped: its role's credentials end");
                n += k;
            }
            Err(e) => {
                tracing::warn!(task = %arn, error = %e.message, "ending a stopped task's credentials failed")
            }
        }
    }
    n
}

/// Housekeeping every `housekeeping_interval`. Runs forever.
pub async fn run_housekeeping(server: Arc<Server>) {
    let mut tick = tokio::time::interval(server.config.housekeeping_interval);
    loop {
        tick.tick().await;
        if let Err(e) = housekeeping_round(&server).await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
    }
}

/// Forgets tasks that have been STOPPED for longer than the retention period.
pub async fn housekeeping_round(server: &Server) -> Result<usize, ApiError> {
    let now = server.clock.now();
    let timing = Timing::of(&server.config);
    server
        .write(move |st| {
            let expired = housekeeping::expired(st.tasks.values(), now, &timing);
            let mut txn = Txn::new();
            for id in &expired {
                st.remove_task(id);
                txn = records::TASKS.delete(txn, id);
            }
            Ok((expired.len(), txn))
        })
        .await
}

/// One liveness round over every agent's instance.
pub async fn liveness_round(server: &Server) -> Result<(), ApiError> {
    let now = server.clock.now();
    let timing = Timing::of(&server.config);
    server
        .write(move |st| {
            let views: Vec<liveness::InstanceView<'_>> = st
                .instances
                .values()
                .filter(|i| i.has_agent && i.status() != "INACTIVE")
                .map(|i| liveness::InstanceView {
                    arn: i
                        .instance
                        .container_instance_arn
                        .as_deref()
                        .unwrap_or_default(),
                    connected: liveness::connected(
                        i.has_agent,
                        i.open_polls,
                        i.last_seen,
                        now,
                        &timing,
                    ),
                    last_seen: i.last_seen,
                    tasks: st
                        .instance_tasks(&i.id)
                        .filter(|t| !t.is_stopped())
                        .collect(),
                })
                .collect();
            let changes = liveness::step(&views, now, &timing);
            drop(views);
            let mut txn = Txn::new();
            for c in changes {
                if c.task.is_stopped() && c.was != TaskState::Stopped {
                    st.tally(&c.task, c.was.as_str(), -1);
                }
                txn = records::TASKS.put(txn, &c.task.id, &c.task);
                st.tasks.insert(c.task.id.clone(), c.task);
            }
            Ok(((), txn))
        })
        .await
}

/// Whether a task's essential containers define health checks.
fn has_health_check(st: &State, t: &TaskRecord) -> bool {
    let Some(arn) = t.task.task_definition_arn.as_deref() else {
        return false;
    };
    let Some((family, rev)) = arn
        .rsplit_once("task-definition/")
        .and_then(|(_, fr)| fr.rsplit_once(':'))
    else {
        return false;
    };
    let Some(r) = rev
        .parse::<i32>()
        .ok()
        .and_then(|rev| st.families.get(family)?.revisions.get(&rev))
    else {
        return false;
    };
    r.task_definition
        .container_definitions
        .iter()
        .flatten()
        .any(|c| c.essential.unwrap_or(true) && c.health_check.is_some())
}

/// The DAEMON service's eligible instances: ACTIVE agents of its cluster that meet its
/// constraints.
fn daemon_eligible(
    server: &Server,
    st: &State,
    rec: &crate::state::ServiceRecord,
    now: f64,
) -> Vec<String> {
    let constraints = crate::ops::placement::constraints(
        rec.service.placement_constraints.as_deref(),
        &TaskDefinition::default(),
    )
    .unwrap_or_default();
    st.instances
        .values()
        .filter(|i| i.cluster == rec.cluster && i.status() == "ACTIVE" && i.has_agent)
        .filter(|i| {
            let view = crate::ops::instances::placement_view(server, st, i, now);
            constraints.iter().all(|c| match c {
                gantry_scheduler::Constraint::MemberOf(q) => {
                    gantry_scheduler::matches(&q.expr, &view)
                }
                gantry_scheduler::Constraint::DistinctInstance => true,
            })
        })
        .map(|i| i.id.clone())
        .collect()
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A target of a task: its group, address and port.
type Target = (String, String, u16);

/// A task's targets: for each of its service's load balancers, the task's own address and the
/// container's port (awsvpc), or the host's address and the port Docker bound (bridge, host).
/// The load balancers run on the server's host, which reaches a bridge task's port on
/// loopback.
fn task_targets(lbs: &[LoadBalancer], t: &TaskRecord) -> Vec<Target> {
    let eni_ip = crate::ops::network::task_ip(&t.task);
    let mut out = Vec::new();
    for lb in lbs {
        let (Some(group), Some(name), Some(port)) = (
            lb.target_group_arn.as_deref(),
            lb.container_name.as_deref(),
            lb.container_port,
        ) else {
            continue;
        };
        let target = match &eni_ip {
            Some(ip) => u16::try_from(port).ok().map(|p| (ip.clone(), p)),
            None => t
                .task
                .containers
                .iter()
                .flatten()
                .find(|c| c.name.as_deref() == Some(name))
                .and_then(|c| {
                    c.network_bindings
                        .iter()
                        .flatten()
                        .find(|b| b.container_port == Some(port))
                })
                .and_then(|b| u16::try_from(b.host_port?).ok())
                .map(|p| ("127.0.0.1".to_string(), p)),
        };
        if let Some((ip, p)) = target {
            out.push((group.to_string(), ip, p));
        }
    }
    out
}

/// ECS's service events for targets registered or deregistered, one per group.
fn lb_events(rec: &mut crate::state::ServiceRecord, what: &str, targets: &[Target], now: f64) {
    let mut groups: Vec<&str> = targets.iter().map(|t| t.0.as_str()).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        let n = targets.iter().filter(|t| t.0 == g).count();
        let name = rec.name.clone();
        crate::ops::services::event_at(
            rec,
            format!("(service {name}) {what} {n} targets in (target-group {g})"),
            now,
        );
    }
}

/// One round for one service: gather its view, step, commit the step; then launch what the
/// step asked for, outside the lock.
async fn service_round(server: &Server, key: &(String, String)) -> Result<(), ApiError> {
    let now = server.clock.now();
    let timing = Timing::of(&server.config);
    let key2 = key.clone();
    let registry = server.config.targets.clone();
    let (launches, register, deregister) = server
        .write(move |st| {
            let Some(rec) = st.services.get(&key2) else {
                return Ok(((Vec::new(), Vec::new(), Vec::new()), Txn::new()));
            };
            let daemon = rec.service.scheduling_strategy == Some(SchedulingStrategy::Daemon);
            // Behind load balancers: each task's targets, and what the load balancers say.
            let reg = registry.as_deref();
            let lbs: Vec<LoadBalancer> = match reg {
                Some(_) => rec.service.load_balancers.clone().unwrap_or_default(),
                None => Vec::new(),
            };
            let targets_of: std::collections::BTreeMap<String, Vec<Target>> = if lbs.is_empty() {
                Default::default()
            } else {
                st.service_tasks(&rec.cluster, &rec.name)
                    .map(|t| (t.id.clone(), task_targets(&lbs, t)))
                    .collect()
            };
            // Groups UpdateService took off the service: tasks still in them leave as they
            // stop, and nothing new joins them.
            let former_of: std::collections::BTreeMap<String, Vec<Target>> =
                if reg.is_none() || rec.former_load_balancers.is_empty() {
                    Default::default()
                } else {
                    st.service_tasks(&rec.cluster, &rec.name)
                        .map(|t| (t.id.clone(), task_targets(&rec.former_load_balancers, t)))
                        .collect()
                };
            let state_of = |t: &Target| reg.and_then(|r| r.state(&t.0, &t.1, t.2));
            let lb_view = |t: &TaskRecord| -> Option<LbHealth<'_>> {
                if lbs.is_empty() {
                    return None;
                }
                let targets = targets_of.get(&t.id)?;
                if t.state() != TaskState::Running || targets.len() < lbs.len() {
                    return Some(LbHealth::Pending);
                }
                let mut healthy = true;
                for target in targets {
                    match state_of(target) {
                        Some(TargetState::Healthy) => {}
                        Some(TargetState::Unhealthy) => {
                            return Some(LbHealth::Unhealthy(&target.0))
                        }
                        _ => healthy = false,
                    }
                }
                Some(if healthy {
                    LbHealth::Healthy
                } else {
                    LbHealth::Pending
                })
            };
            let view = ServiceView {
                rec,
                tasks: st
                    .service_tasks(&rec.cluster, &rec.name)
                    .map(|t| TaskView {
                        rec: t,
                        has_health_check: has_health_check(st, t),
                        instance_active: st
                            .instances
                            .get(&t.instance)
                            .is_some_and(|i| i.status() == "ACTIVE"),
                        lb: lb_view(t),
                        draining: t.draining.is_some(),
                    })
                    .collect(),
                daemon_eligible: if daemon {
                    daemon_eligible(server, st, rec, now)
                } else {
                    Vec::new()
                },
            };
            let out = service::step(&view, now, &timing);
            let old_service = format!("{:?}", view.rec.service);
            let (old_failures, old_steady) = (view.rec.start_failures, view.rec.steady);
            drop(view);
            let mut rec = out.service;
            let mut txn = Txn::new();
            let mut touched = BTreeSet::new();
            for id in &out.counted {
                if let Some(t) = st.tasks.get_mut(id) {
                    t.counted = true;
                    touched.insert(id.clone());
                }
            }
            for id in &out.healthy {
                if let Some(t) = st.tasks.get_mut(id) {
                    t.healthy_at = Some(now);
                    touched.insert(id.clone());
                }
            }
            let registered = |id: &str| -> Vec<Target> {
                targets_of
                    .get(id)
                    .into_iter()
                    .chain(former_of.get(id))
                    .flatten()
                    .filter(|t| matches!(state_of(t), Some(s) if s != TargetState::Draining))
                    .cloned()
                    .collect()
            };
            let (mut register, mut deregister) = (Vec::new(), Vec::new());
            for (id, reason) in &out.stops {
                // A task behind load balancers leaves them first, and stops once drained.
                let leaving = registered(id);
                if let (Some(r), false) = (reg, leaving.is_empty()) {
                    if let Some(t) = st.tasks.get_mut(id).filter(|t| t.draining.is_none()) {
                        let delay = leaving
                            .iter()
                            .map(|g| r.deregistration_delay(&g.0))
                            .fold(0.0, f64::max);
                        t.draining = Some((now + delay, reason.clone()));
                        touched.insert(id.clone());
                        lb_events(&mut rec, "deregistered", &leaving, now);
                        deregister.extend(leaving);
                    }
                    continue;
                }
                if request_stop(
                    st,
                    id,
                    TaskStopCode::ServiceSchedulerInitiated,
                    reason.clone(),
                    now,
                )
                .is_some()
                {
                    touched.insert(id.clone());
                }
            }
            // Each task as it stands: its draining, whether it serves, whether it stopped.
            struct Standing {
                id: String,
                draining: Option<(f64, String)>,
                serving: bool,
                stopped: bool,
            }
            let tasks: Vec<Standing> = st
                .service_tasks(&rec.cluster, &rec.name)
                .map(|t| Standing {
                    id: t.id.clone(),
                    draining: t.draining.clone(),
                    serving: t.state() == TaskState::Running && t.desired_status() != "STOPPED",
                    stopped: t.is_stopped(),
                })
                .collect();
            for Standing {
                id,
                draining,
                serving,
                stopped,
            } in tasks
            {
                match draining {
                    // Drained: now it stops.
                    Some((until, reason))
                        if now >= until
                            && serving
                            && request_stop(
                                st,
                                &id,
                                TaskStopCode::ServiceSchedulerInitiated,
                                reason.clone(),
                                now,
                            )
                            .is_some() =>
                    {
                        touched.insert(id.clone());
                    }
                    Some(_) => {}
                    None if serving => {
                        let missing: Vec<Target> = targets_of
                            .get(&id)
                            .into_iter()
                            .flatten()
                            .filter(|t| state_of(t).is_none())
                            .cloned()
                            .collect();
                        if !missing.is_empty() {
                            lb_events(&mut rec, "registered", &missing, now);
                            register.extend(missing);
                        }
                    }
                    // A task that stopped on its own leaves its target groups.
                    None if stopped => deregister.extend(registered(&id)),
                    None => {}
                }
            }
            for id in &touched {
                if let Some(t) = st.tasks.get(id) {
                    txn = records::TASKS.put(txn, id, t);
                }
            }
            if format!("{:?}", rec.service) != old_service
                || rec.start_failures != old_failures
                || rec.steady != old_steady
            {
                txn =
                    records::SERVICES.put(txn, &records::service_id(&rec.cluster, &rec.name), &rec);
            }
            st.services.insert(key2.clone(), rec);
            Ok(((out.launches, register, deregister), txn))
        })
        .await?;
    registries::round(server, key).await;
    if let Some(r) = &server.config.targets {
        for (group, ip, port) in &register {
            if let Err(e) = r.register(group, ip, *port).await {
                tracing::warn!(%group, %ip, port, error = %e.message, "registering a task's target failed; the next round tries again");
            }
        }
        for (group, ip, port) in &deregister {
            if let Err(e) = r.deregister(group, ip, *port).await {
                tracing::warn!(%group, %ip, port, error = %e.message, "deregistering a task's target failed");
            }
        }
    }

    // 5. Launch, outside the lock (placement plans on a snapshot, commits re-check).
    for l in launches {
        let (svc_cluster, name) = key.clone();
        let (deployment, task_definition, result) = match l {
            Launch::Replica {
                deployment,
                task_definition,
                count,
                provider,
            } => {
                let mut tasks = Vec::new();
                let mut failures = Vec::new();
                let mut left = count;
                while left > 0 {
                    let batch = left.min(10);
                    let mut input =
                        service_input(server, key, &deployment, &task_definition, batch)?;
                    if let Some(p) = &provider {
                        input.launch_type =
                            Some(crate::ops::capacity_providers::launch_type_for(p));
                        input.capacity_provider = Some(p.clone());
                    }
                    let (t, f) = launch(server, input).await?;
                    let placed = t.len();
                    tasks.extend(t);
                    failures.extend(f);
                    left -= batch;
                    if placed < batch {
                        break;
                    }
                }
                (deployment, task_definition, (tasks, failures))
            }
            Launch::Daemon {
                deployment,
                task_definition,
                instances,
            } => {
                let input = service_input(server, key, &deployment, &task_definition, 1)?;
                let r = launch_on(server, input, instances).await?;
                (deployment, task_definition, r)
            }
        };
        let _ = (deployment, task_definition);
        let (tasks, failures) = result;
        let key3 = (svc_cluster, name);
        server
            .write(move |st| {
                let Some(rec) = st.services.get_mut(&key3) else { return Ok(((), Txn::new())) };
                if !tasks.is_empty() {
                    rec.steady = false;
                    let list: Vec<String> = tasks.iter().map(|t| format!("(task {})", short(t.task_arn.as_deref().unwrap_or_default()))).collect();
                    event(rec, format!("(service {}) has started {} tasks: {}.", rec.name, tasks.len(), list.join(" ")));
                } else if !failures.is_empty() {
                    let reasons: Vec<String> = failures.iter().filter_map(|f| f.reason.clone()).collect();
                    let mut uniq = reasons.clone();
                    uniq.sort();
                    uniq.dedup();
                    let msg = format!(
                        "(service {}) was unable to place a task because no container instance met all of its requirements. Reasons: {}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
                        rec.name,
                        uniq.join(", ")
                    );
                    let last = rec.service.events.as_ref().and_then(|e| e.first()).and_then(|e| e.message.clone());
                    if last.as_deref() != Some(msg.as_str()) {
                        event(rec, msg);
                    }
                }
                let rec = rec.clone();
                Ok(((), records::SERVICES.put(Txn::new(), &records::service_id(&rec.cluster, &rec.name), &rec)))
            })
            .await?;
    }
    Ok(())
}

fn service_input(
    server: &Server,
    key: &(String, String),
    deployment: &str,
    task_definition: &str,
    count: usize,
) -> Result<LaunchInput, ApiError> {
    let (strategy, constraints, launch_type, tags, propagate, network) = server.read(|st| {
        st.services
            .get(key)
            .map(|r| {
                (
                    r.service
                        .placement_strategy
                        .clone()
                        .filter(|s| !s.is_empty()),
                    r.service.placement_constraints.clone(),
                    r.service.launch_type,
                    r.service.tags.clone(),
                    r.service.propagate_tags,
                    r.service.network_configuration.clone(),
                )
            })
            .unwrap_or_default()
    })?;
    // A service spreads over zones, then instances, unless it says otherwise (ECS's default).
    let strategy = strategy.or_else(|| {
        Some(vec![
            PlacementStrategy {
                r#type: Some(PlacementStrategyType::Spread),
                field: Some("attribute:ecs.availability-zone".into()),
            },
            PlacementStrategy {
                r#type: Some(PlacementStrategyType::Spread),
                field: Some("instanceId".into()),
            },
        ])
    });
    Ok(LaunchInput {
        cluster: Some(key.0.clone()),
        task_definition: task_definition.to_string(),
        launch_type,
        network_configuration: network,
        started_by: Some(deployment.to_string()),
        group: Some(format!("service:{}", key.1)),
        tags: if propagate == Some(PropagateTags::Service) {
            tags
        } else {
            None
        },
        placement_strategy: strategy,
        placement_constraints: constraints,
        count,
        service: Some((key.1.clone(), deployment.to_string())),
        ..LaunchInput::default()
    })
}

#[cfg(test)]
mod tests;
