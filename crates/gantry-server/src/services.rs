//! The service scheduler: a level-triggered loop that makes every service's tasks match its
//! deployments. Safe to run at any time, after any crash: each round looks at the state as it
//! is and takes the next steps.
//!
//! REPLICA: keep `desiredCount` healthy tasks of the PRIMARY deployment; during a deployment
//! never run more than `maximumPercent` nor fewer than `minimumHealthyPercent` of it (minimum
//! rounded up, maximum down); replace tasks that stop, fail their health checks or sit on a
//! DRAINING instance; drain older deployments, then drop them. The circuit breaker counts
//! PRIMARY tasks that stop before they are healthy. Tasks that never reach RUNNING back off
//! (the throttle). DAEMON: one task on every ACTIVE instance that meets the constraints.

use crate::ops::services::{deploy, event};
use crate::ops::tasks::{launch, launch_on, request_stop, LaunchInput};
use crate::state::{keys, put, State, TaskRecord};
use crate::{now_secs, Server};
use gantry_api::model::*;
use gantry_api::ApiError;
use gantry_store::Txn;
use std::sync::Arc;

/// Runs forever.
pub async fn run(server: Arc<Server>) {
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
        if let Err(e) = lost_instances(&server).await {
            tracing::warn!(error = %e, "checking for lost instances failed");
        }
        for key in keys {
            if let Err(e) = reconcile(&server, &key).await {
                tracing::warn!(service = %key.1, error = %e, "service reconcile failed");
            }
        }
    }
}

/// Instances whose agent is silent: their tasks show DISCONNECTED; past the lost timeout they are
/// stopped (services replace them), and past the grace period they count as STOPPED even
/// without the agent's word. Unlike ECS, which leaves tasks of a disconnected agent alone.
async fn lost_instances(server: &Server) -> Result<(), ApiError> {
    let now = now_secs();
    let lost_after = server.config.lost_timeout.as_secs_f64();
    let grace = server.config.lost_grace.as_secs_f64();
    server
        .write(move |st| {
            let mut txn = Txn::new();
            let instances: Vec<(String, bool, f64, String)> = st
                .instances
                .values()
                .filter(|i| i.has_agent && i.status() != "INACTIVE")
                .map(|i| {
                    let connected = crate::ops::instances::agent_connected(server, i, now);
                    (i.id.clone(), connected, i.last_seen, i.instance.container_instance_arn.clone().unwrap_or_default())
                })
                .collect();
            for (id, connected, last_seen, arn) in instances {
                let tasks: Vec<String> = st.instance_tasks(&id).filter(|t| !t.is_stopped()).map(|t| t.id.clone()).collect();
                for tid in tasks {
                    let Some(t) = st.tasks.get_mut(&tid) else { continue };
                    let want = if connected { Connectivity::Connected } else { Connectivity::Disconnected };
                    let mut changed = false;
                    if t.task.connectivity.is_some() && t.task.connectivity != Some(want) {
                        t.task.connectivity = Some(want);
                        t.task.connectivity_at = Some(now);
                        changed = true;
                    }
                    if !connected && now - last_seen > lost_after {
                        if t.desired_status() != "STOPPED" {
                            t.task.desired_status = Some("STOPPED".into());
                            t.task.stop_code.get_or_insert(TaskStopCode::ServiceSchedulerInitiated);
                            t.task.stopped_reason.get_or_insert_with(|| format!("Task stopped because its container instance {arn} was lost (no agent contact)."));
                            t.task.stopping_at.get_or_insert(now);
                            changed = true;
                        }
                        if now - t.task.stopping_at.unwrap_or(now) > grace {
                            let old = t.last_status().to_string();
                            t.task.last_status = Some("STOPPED".into());
                            t.task.stopped_at = Some(now);
                            let snapshot = t.clone();
                            st.tally(&snapshot, &old, -1);
                            txn = put(txn, keys::task(&tid), &snapshot);
                            continue;
                        }
                    }
                    if changed {
                        let t = t.clone();
                        txn = put(txn, keys::task(&tid), &t);
                    }
                }
            }
            Ok(((), txn))
        })
        .await
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// What a round decided to launch, after its state changes were committed.
enum Launch {
    Replica {
        deployment: String,
        task_definition: String,
        count: usize,
        /// The capacity provider these tasks are for, when the service has a strategy.
        provider: Option<String>,
    },
    Daemon {
        deployment: String,
        task_definition: String,
        instances: Vec<String>,
    },
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

/// One round for one service.
async fn reconcile(server: &Server, key: &(String, String)) -> Result<(), ApiError> {
    let now = now_secs();
    let healthy_after = server.config.healthy_after.as_secs_f64();
    let (base, cap) = (
        server.config.throttle_base.as_secs_f64(),
        server.config.throttle_cap.as_secs_f64(),
    );
    let key2 = key.clone();
    let launches = server
        .write(move |st| {
            let Some(rec) = st.services.get(&key2).cloned() else { return Ok((Vec::new(), Txn::new())) };
            let mut rec = rec;
            let mut txn = Txn::new();
            let service_tasks: Vec<String> = st.service_tasks(&rec.cluster, &rec.name).map(|t| t.id.clone()).collect();
            let primary = rec
                .service
                .deployments
                .iter()
                .flatten()
                .find(|d| d.status.as_deref() == Some("PRIMARY"))
                .cloned()
                .unwrap_or_default();
            let primary_id = primary.id.clone().unwrap_or_default();
            let grace = f64::from(rec.service.health_check_grace_period_seconds.unwrap_or(0));

            // 1. Account for tasks that stopped, and notice tasks that became healthy.
            let mut to_stop: Vec<(String, String)> = Vec::new();
            for id in &service_tasks {
                let checks = st.tasks.get(id).is_some_and(|t| has_health_check(st, t));
                let Some(t) = st.tasks.get_mut(id) else { continue };
                let dep = t.service.as_ref().map(|s| s.1.clone()).unwrap_or_default();
                if t.is_stopped() {
                    if !t.counted {
                        t.counted = true;
                        let scheduler_stop = matches!(
                            t.task.stop_code,
                            Some(TaskStopCode::ServiceSchedulerInitiated) | Some(TaskStopCode::UserInitiated)
                        ) && t.healthy_at.is_some();
                        if t.healthy_at.is_none() && dep == primary_id && !matches!(t.task.stop_code, Some(TaskStopCode::ServiceSchedulerInitiated)) {
                            if let Some(d) = rec.service.deployments.iter_mut().flatten().find(|d| d.id.as_deref() == Some(dep.as_str())) {
                                d.failed_tasks = Some(d.failed_tasks.unwrap_or(0) + 1);
                            }
                        }
                        // Tasks that stop before they are healthy (never started, or crash right
                        // away) back off the next launches.
                        if t.healthy_at.is_none() && !scheduler_stop && dep == primary_id
                            && !matches!(t.task.stop_code, Some(TaskStopCode::ServiceSchedulerInitiated))
                        {
                            rec.start_failures += 1;
                            let delay = (base * 2f64.powi(rec.start_failures.saturating_sub(1).min(30) as i32)).min(cap);
                            rec.next_launch_at = now + delay;
                            if rec.start_failures == 3 {
                                let n = rec.name.clone();
                                event(&mut rec, format!("(service {}) is unable to consistently start tasks successfully.", n));
                            }
                        }
                        rec.steady = false;
                        txn = put(txn, keys::task(id), &*t);
                    }
                    continue;
                }
                if t.desired_status() == "STOPPED" {
                    continue;
                }
                if t.last_status() == "RUNNING" {
                    let since = t.task.started_at.unwrap_or(now);
                    let health = t.task.health_status;
                    if t.healthy_at.is_none() {
                        let ok = if checks { health == Some(HealthStatus::Healthy) } else { now - since >= healthy_after };
                        if ok {
                            t.healthy_at = Some(now);
                            txn = put(txn, keys::task(id), &*t);
                            if dep == primary_id {
                                rec.start_failures = 0;
                                rec.next_launch_at = 0.0;
                            }
                        }
                    }
                    if checks && health == Some(HealthStatus::Unhealthy) && now - since >= grace {
                        to_stop.push((id.clone(), "Task failed container health checks".into()));
                    }
                }
            }

            // 2. The circuit breaker.
            let dc = rec.service.deployment_configuration.clone().unwrap_or_default();
            let breaker = dc.deployment_circuit_breaker.clone().unwrap_or(DeploymentCircuitBreaker { enable: false, rollback: false, ..Default::default() });
            let desired_now = rec.service.desired_count.unwrap_or(0);
            let threshold = ((f64::from(desired_now) * 0.5).ceil() as i32).clamp(3, 200);
            let mut primary_failed = primary.rollout_state == Some(DeploymentRolloutState::Failed);
            if breaker.enable && !primary_failed {
                let failed = rec
                    .service
                    .deployments
                    .iter()
                    .flatten()
                    .find(|d| d.id.as_deref() == Some(primary_id.as_str()))
                    .and_then(|d| d.failed_tasks)
                    .unwrap_or(0);
                if failed >= threshold {
                    primary_failed = true;
                    let reason = "ECS deployment circuit breaker: tasks failed to start.".to_string();
                    if let Some(d) = rec.service.deployments.iter_mut().flatten().find(|d| d.id.as_deref() == Some(primary_id.as_str())) {
                        d.rollout_state = Some(DeploymentRolloutState::Failed);
                        d.rollout_state_reason = Some(reason);
                        d.updated_at = Some(now);
                    }
                    let n = rec.name.clone();
                                event(&mut rec, format!("(service {}) (deployment {primary_id}) deployment failed: tasks failed to start.", n));
                    let target = rec.last_completed.clone().filter(|td| Some(td) != primary.task_definition.as_ref());
                    if breaker.rollback {
                        if let Some(td) = target {
                            deploy(&mut rec, &td, now);
                            let new_id = rec.service.deployments.iter().flatten().next().and_then(|d| d.id.clone()).unwrap_or_default();
                            let n = rec.name.clone();
                                event(&mut rec, format!("(service {}) rolling back to deployment {new_id} ({}).", n, short(&td)));
                            primary_failed = false;
                        }
                    }
                }
            }
            let primary = rec
                .service
                .deployments
                .iter()
                .flatten()
                .find(|d| d.status.as_deref() == Some("PRIMARY"))
                .cloned()
                .unwrap_or_default();
            let primary_id = primary.id.clone().unwrap_or_default();
            let primary_td = primary.task_definition.clone().unwrap_or_default();

            // 3. Decide what to stop and start.
            let draining = rec.status() == "DRAINING";
            let daemon = rec.service.scheduling_strategy == Some(SchedulingStrategy::Daemon);
            let live: Vec<&TaskRecord> = service_tasks
                .iter()
                .filter_map(|id| st.tasks.get(id))
                .filter(|t| !t.is_stopped() && t.desired_status() != "STOPPED" && !to_stop.iter().any(|(s, _)| *s == t.id))
                .collect();
            let instance_ok = |t: &TaskRecord| st.instances.get(&t.instance).is_some_and(|i| i.status() == "ACTIVE");
            let mut launches = Vec::new();
            if daemon {
                let eligible: Vec<String> = st
                    .instances
                    .values()
                    .filter(|i| i.cluster == rec.cluster && i.status() == "ACTIVE" && i.has_agent)
                    .filter(|i| {
                        let view = crate::ops::instances::placement_view(server, st, i, now);
                        let constraints = crate::ops::placement::constraints(rec.service.placement_constraints.as_deref(), &TaskDefinition::default())
                            .unwrap_or_default();
                        constraints.iter().all(|c| match c {
                            gantry_scheduler::Constraint::MemberOf(q) => gantry_scheduler::matches(&q.expr, &view),
                            gantry_scheduler::Constraint::DistinctInstance => true,
                        })
                    })
                    .map(|i| i.id.clone())
                    .collect();
                rec.service.desired_count = Some(if draining { 0 } else { eligible.len() as i32 });
                for t in &live {
                    let dep = t.service.as_ref().map(|s| s.1.as_str()).unwrap_or_default();
                    if draining || !eligible.contains(&t.instance) || dep != primary_id {
                        to_stop.push((t.id.clone(), format!("Scaling activity initiated by (deployment {primary_id})")));
                    }
                }
                if !draining && !primary_failed {
                    let missing: Vec<String> = eligible
                        .iter()
                        .filter(|i| !live.iter().any(|t| t.instance == **i))
                        .cloned()
                        .collect();
                    if !missing.is_empty() && now >= rec.next_launch_at {
                        launches.push(Launch::Daemon { deployment: primary_id.clone(), task_definition: primary_td.clone(), instances: missing });
                    }
                }
            } else {
                let desired = if draining { 0 } else { desired_now.max(0) };
                let max_total = (i64::from(desired) * i64::from(dc.maximum_percent.unwrap_or(200)) / 100) as usize;
                let min_healthy = ((i64::from(desired) * i64::from(dc.minimum_healthy_percent.unwrap_or(100)) + 99) / 100) as usize;
                let is_primary = |t: &TaskRecord| t.service.as_ref().is_some_and(|s| s.1 == primary_id);
                // Tasks that must go: old deployments, and tasks on instances that are not ACTIVE.
                // Available: old tasks while RUNNING, new ones once healthy.
                let running = |t: &TaskRecord| t.last_status() == "RUNNING";
                let mut available = live.iter().filter(|t| if is_primary(t) { t.healthy_at.is_some() } else { running(t) }).count();
                let mut primary_live: Vec<&TaskRecord> = live.iter().copied().filter(|t| is_primary(t) && instance_ok(t)).collect();
                let mut leaving: Vec<&TaskRecord> = live.iter().copied().filter(|t| !is_primary(t) || !instance_ok(t)).collect();
                // Those not running first, then the oldest.
                leaving.sort_by_key(|t| (running(t), t.task.created_at.map(|c| (c * 1000.0) as i64)));
                let mut total = live.len();
                for t in leaving {
                    let counted = if is_primary(t) { t.healthy_at.is_some() } else { running(t) };
                    if !counted {
                        to_stop.push((t.id.clone(), format!("Scaling activity initiated by (deployment {primary_id})")));
                        total -= 1;
                    } else if available > min_healthy || draining {
                        to_stop.push((t.id.clone(), format!("Scaling activity initiated by (deployment {primary_id})")));
                        available -= 1;
                        total -= 1;
                    }
                }
                // Scale in: the newest, unhealthy first.
                primary_live.sort_by_key(|t| (t.healthy_at.is_some(), std::cmp::Reverse(t.task.created_at.map(|c| (c * 1000.0) as i64))));
                while primary_live.len() > desired as usize {
                    let t = primary_live.remove(0);
                    to_stop.push((t.id.clone(), "Service scaled in".into()));
                    total -= 1;
                }
                let want = (desired as usize).saturating_sub(primary_live.len());
                let room = max_total.saturating_sub(total);
                let n = want.min(room);
                if n > 0 && !primary_failed && now >= rec.next_launch_at {
                    match rec.service.capacity_provider_strategy.as_deref().filter(|s| !s.is_empty()) {
                        // With a strategy, launch what each provider lacks of its share.
                        Some(strategy) => {
                            let mut left = n;
                            for (provider, share) in crate::ops::capacity_providers::split(strategy, desired as usize) {
                                let have = primary_live.iter().filter(|t| t.task.capacity_provider_name.as_deref() == Some(provider.as_str())).count();
                                let k = share.saturating_sub(have).min(left);
                                if k > 0 {
                                    left -= k;
                                    launches.push(Launch::Replica { deployment: primary_id.clone(), task_definition: primary_td.clone(), count: k, provider: Some(provider) });
                                }
                            }
                        }
                        None => launches.push(Launch::Replica { deployment: primary_id.clone(), task_definition: primary_td.clone(), count: n, provider: None }),
                    }
                }
            }
            // Stop what must go.
            let mut stopped = Vec::new();
            for (id, reason) in &to_stop {
                if let Some(t) = request_stop(st, id, TaskStopCode::ServiceSchedulerInitiated, reason.clone(), now) {
                    txn = put(txn, keys::task(id), &t);
                    stopped.push(short(t.task.task_arn.as_deref().unwrap_or_default()).to_string());
                }
            }
            if !stopped.is_empty() {
                rec.steady = false;
                let list: Vec<String> = stopped.iter().map(|s| format!("(task {s})")).collect();
                let n = rec.name.clone();
                                event(&mut rec, format!("(service {}) has stopped {} running tasks: {}.", n, stopped.len(), list.join(" ")));
            }

            // 4. Drop drained deployments; note completion and steady state.
            let alive: Vec<String> = service_tasks
                .iter()
                .filter_map(|id| st.tasks.get(id))
                .filter(|t| !t.is_stopped())
                .filter_map(|t| t.service.as_ref().map(|s| s.1.clone()))
                .collect();
            if let Some(ds) = rec.service.deployments.as_mut() {
                ds.retain(|d| d.status.as_deref() == Some("PRIMARY") || alive.iter().any(|a| Some(a) == d.id.as_ref()));
            }
            let live_primary_healthy = service_tasks
                .iter()
                .filter_map(|id| st.tasks.get(id))
                .filter(|t| !t.is_stopped() && t.desired_status() != "STOPPED" && t.healthy_at.is_some())
                .filter(|t| t.service.as_ref().is_some_and(|s| s.1 == primary_id))
                .count();
            let live_all = alive.len();
            let desired = rec.service.desired_count.unwrap_or(0).max(0) as usize;
            let single = rec.service.deployments.as_ref().is_some_and(|d| d.len() == 1);
            if draining && live_all == 0 {
                rec.service.status = Some("INACTIVE".into());
                if let Some(ds) = rec.service.deployments.as_mut() {
                    ds.clear();
                }
            } else if single && launches.is_empty() && to_stop.is_empty() && live_primary_healthy == desired && live_all == desired {
                if let Some(d) = rec.service.deployments.iter_mut().flatten().next() {
                    if d.rollout_state == Some(DeploymentRolloutState::InProgress) {
                        d.rollout_state = Some(DeploymentRolloutState::Completed);
                        d.rollout_state_reason = Some(format!("ECS deployment {primary_id} completed."));
                        d.updated_at = Some(now);
                        rec.last_completed = d.task_definition.clone();
                    }
                }
                if !rec.steady && !draining {
                    rec.steady = true;
                    let n = rec.name.clone();
                                event(&mut rec, format!("(service {}) has reached a steady state.", n));
                }
            }
            if let Some(d) = rec.service.deployments.iter_mut().flatten().find(|d| d.status.as_deref() == Some("PRIMARY")) {
                d.desired_count = rec.service.desired_count;
            }
            let changed = st.services.get(&key2).map(|old| format!("{:?}", old.service) != format!("{:?}", rec.service)).unwrap_or(true)
                || st.services.get(&key2).is_some_and(|old| old.start_failures != rec.start_failures || old.steady != rec.steady);
            if changed {
                txn = put(txn, keys::service(&rec.cluster, &rec.name), &rec);
            }
            st.services.insert(key2.clone(), rec);
            Ok((launches, txn))
        })
        .await?;

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
                Ok(((), put(Txn::new(), keys::service(&rec.cluster, &rec.name), &rec)))
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
