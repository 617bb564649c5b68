//! One service's round, as a pure step: from the service, its tasks and the clock's `now` to
//! what must change. Nothing here reads the state or the clock; [`super::services`] gathers
//! the input and commits the output.
//!
//! REPLICA: keep `desiredCount` healthy tasks of the PRIMARY deployment; during a deployment
//! never run more than `maximumPercent` nor fewer than `minimumHealthyPercent` of it (minimum
//! rounded up, maximum down); replace tasks that stop, fail their health checks or sit on an
//! instance that is not ACTIVE; drain older deployments, then drop them. The circuit breaker
//! counts PRIMARY tasks that stop before they are healthy (threshold: half of desiredCount,
//! within 3..=200). Tasks that stop before they are healthy back off the next launches (the
//! throttle: doubling from the base up to the cap). DAEMON: one task on every eligible
//! instance.

use super::Timing;
use crate::ops::services::{deploy, event_at};
use crate::state::{ServiceRecord, TaskRecord, TaskState};
use gantry_api::model::*;

/// A task of the service, with what the step needs to know about it from elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct TaskView<'a> {
    pub rec: &'a TaskRecord,
    /// Its essential containers define health checks.
    pub has_health_check: bool,
    /// Its instance is ACTIVE (not DRAINING, not gone).
    pub instance_active: bool,
    /// Its targets' health, when its service has load balancers.
    pub lb: Option<LbHealth<'a>>,
    /// It has been deregistered from its load balancers and is draining before it stops.
    pub draining: bool,
}

/// A task's targets in its service's target groups, as the load balancers see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbHealth<'a> {
    /// Not every target is registered and healthy yet.
    Pending,
    Healthy,
    /// A target failed its health checks in this group.
    Unhealthy(&'a str),
}

/// Everything one round of one service looks at.
#[derive(Debug, Clone)]
pub struct ServiceView<'a> {
    pub rec: &'a ServiceRecord,
    pub tasks: Vec<TaskView<'a>>,
    /// DAEMON only: the ACTIVE agent instances of the cluster that meet its constraints.
    pub daemon_eligible: Vec<String>,
}

/// Tasks to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
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

/// What a round decided.
#[derive(Debug, Clone)]
pub struct ServiceStep {
    /// The service as it is to be stored (deployments, counters, events).
    pub service: ServiceRecord,
    /// Tasks whose stop is now accounted for.
    pub counted: Vec<String>,
    /// Tasks that became healthy now.
    pub healthy: Vec<String>,
    /// Tasks to stop, with the reason ECS gives.
    pub stops: Vec<(String, String)>,
    pub launches: Vec<Launch>,
}

/// The circuit breaker's threshold: half of the desired count, rounded up, within 3..=200.
pub fn breaker_threshold(desired: i32) -> i32 {
    ((f64::from(desired) * 0.5).ceil() as i32).clamp(3, 200)
}

/// The bounds of a rolling deployment: at most `maximumPercent` of desired running (rounded
/// down), at least `minimumHealthyPercent` healthy (rounded up).
pub fn deployment_bounds(desired: i32, minimum_healthy: i32, maximum: i32) -> (usize, usize) {
    let d = i64::from(desired.max(0));
    let max_total = (d * i64::from(maximum.max(0)) / 100) as usize;
    let min_healthy = ((d * i64::from(minimum_healthy.max(0)) + 99) / 100) as usize;
    (min_healthy, max_total)
}

/// The throttle's delay after the `failures`-th task in a row stopped before it was healthy.
pub fn throttle_delay(failures: u32, base: f64, cap: f64) -> f64 {
    (base * 2f64.powi(failures.saturating_sub(1).min(30) as i32)).min(cap)
}

fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn primary(rec: &ServiceRecord) -> Deployment {
    rec.service
        .deployments
        .iter()
        .flatten()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
        .cloned()
        .unwrap_or_default()
}

fn deployment_of(t: &TaskRecord) -> &str {
    t.service.as_ref().map(|s| s.1.as_str()).unwrap_or_default()
}

/// One round for one service.
pub fn step(view: &ServiceView<'_>, now: f64, timing: &Timing) -> ServiceStep {
    let mut rec = view.rec.clone();
    let name = rec.name.clone();
    let mut counted = Vec::new();
    let mut healthy = Vec::new();
    let mut to_stop: Vec<(String, String)> = Vec::new();
    let first = primary(&rec);
    let first_id = first.id.clone().unwrap_or_default();
    let grace = f64::from(rec.service.health_check_grace_period_seconds.unwrap_or(0));

    // 1. Account for tasks that stopped, and notice tasks that became healthy.
    for tv in &view.tasks {
        let t = tv.rec;
        let dep = deployment_of(t);
        if t.state() == TaskState::Stopped {
            if t.counted {
                continue;
            }
            counted.push(t.id.clone());
            let scheduler_stopped = matches!(
                t.task.stop_code,
                Some(TaskStopCode::ServiceSchedulerInitiated)
            );
            if t.healthy_at.is_none() && dep == first_id && !scheduler_stopped {
                if let Some(d) = rec
                    .service
                    .deployments
                    .iter_mut()
                    .flatten()
                    .find(|d| d.id.as_deref() == Some(dep))
                {
                    d.failed_tasks = Some(d.failed_tasks.unwrap_or(0) + 1);
                }
                // Tasks that stop before they are healthy (never started, or crash right away)
                // back off the next launches.
                rec.start_failures += 1;
                rec.next_launch_at = now
                    + throttle_delay(
                        rec.start_failures,
                        timing.throttle_base,
                        timing.throttle_cap,
                    );
                if rec.start_failures == 3 {
                    event_at(
                        &mut rec,
                        format!(
                            "(service {name}) is unable to consistently start tasks successfully."
                        ),
                        now,
                    );
                }
            }
            rec.steady = false;
            continue;
        }
        if t.desired_status() == "STOPPED" || t.state() != TaskState::Running {
            continue;
        }
        let since = t.task.started_at.unwrap_or(now);
        let health = t.task.health_status;
        if t.healthy_at.is_none() {
            // Behind a load balancer, a task is healthy once its targets are (and its
            // containers, when they have checks).
            let ok = match tv.lb {
                Some(LbHealth::Healthy) => {
                    !tv.has_health_check || health == Some(HealthStatus::Healthy)
                }
                Some(_) => false,
                None if tv.has_health_check => health == Some(HealthStatus::Healthy),
                None => now - since >= timing.healthy_after,
            };
            if ok {
                healthy.push(t.id.clone());
                if dep == first_id {
                    rec.start_failures = 0;
                    rec.next_launch_at = 0.0;
                }
            }
        }
        if tv.has_health_check && health == Some(HealthStatus::Unhealthy) && now - since >= grace {
            to_stop.push((t.id.clone(), "Task failed container health checks".into()));
        } else if let Some(LbHealth::Unhealthy(group)) = tv.lb {
            if now - since >= grace {
                to_stop.push((
                    t.id.clone(),
                    format!("Task failed ELB health checks in (target-group {group})"),
                ));
            }
        }
    }
    let is_healthy = |t: &TaskRecord| t.healthy_at.is_some() || healthy.contains(&t.id);

    // 2. The circuit breaker.
    let dc = rec
        .service
        .deployment_configuration
        .clone()
        .unwrap_or_default();
    let breaker = dc.deployment_circuit_breaker.clone().unwrap_or_default();
    let desired_now = rec.service.desired_count.unwrap_or(0);
    let mut primary_failed = first.rollout_state == Some(DeploymentRolloutState::Failed);
    if breaker.enable && !primary_failed {
        let failed = rec
            .service
            .deployments
            .iter()
            .flatten()
            .find(|d| d.id.as_deref() == Some(first_id.as_str()))
            .and_then(|d| d.failed_tasks)
            .unwrap_or(0);
        if failed >= breaker_threshold(desired_now) {
            primary_failed = true;
            if let Some(d) = rec
                .service
                .deployments
                .iter_mut()
                .flatten()
                .find(|d| d.id.as_deref() == Some(first_id.as_str()))
            {
                d.rollout_state = Some(DeploymentRolloutState::Failed);
                d.rollout_state_reason =
                    Some("ECS deployment circuit breaker: tasks failed to start.".to_string());
                d.updated_at = Some(now);
            }
            event_at(
                &mut rec,
                format!("(service {name}) (deployment {first_id}) deployment failed: tasks failed to start."),
                now,
            );
            let target = rec
                .last_completed
                .clone()
                .filter(|td| Some(td) != first.task_definition.as_ref());
            if breaker.rollback {
                if let Some(td) = target {
                    deploy(&mut rec, &td, now);
                    let new_id = primary(&rec).id.unwrap_or_default();
                    event_at(
                        &mut rec,
                        format!(
                            "(service {name}) rolling back to deployment {new_id} ({}).",
                            short(&td)
                        ),
                        now,
                    );
                    primary_failed = false;
                }
            }
        }
    }
    let primary = primary(&rec);
    let primary_id = primary.id.clone().unwrap_or_default();
    let primary_td = primary.task_definition.clone().unwrap_or_default();

    // 3. Decide what to stop and start.
    let draining = rec.status() == "DRAINING";
    let daemon = rec.service.scheduling_strategy == Some(SchedulingStrategy::Daemon);
    let live: Vec<&TaskView<'_>> = view
        .tasks
        .iter()
        .filter(|tv| {
            let t = tv.rec;
            t.state() != TaskState::Stopped
                && t.desired_status() != "STOPPED"
                && !tv.draining
                && !to_stop.iter().any(|(s, _)| *s == t.id)
        })
        .collect();
    let mut launches = Vec::new();
    let scaling = format!("Scaling activity initiated by (deployment {primary_id})");
    if daemon {
        let eligible = &view.daemon_eligible;
        rec.service.desired_count = Some(if draining { 0 } else { eligible.len() as i32 });
        for tv in &live {
            let t = tv.rec;
            if draining || !eligible.contains(&t.instance) || deployment_of(t) != primary_id {
                to_stop.push((t.id.clone(), scaling.clone()));
            }
        }
        if !draining && !primary_failed {
            let missing: Vec<String> = eligible
                .iter()
                .filter(|i| !live.iter().any(|tv| tv.rec.instance == **i))
                .cloned()
                .collect();
            if !missing.is_empty() && now >= rec.next_launch_at {
                launches.push(Launch::Daemon {
                    deployment: primary_id.clone(),
                    task_definition: primary_td.clone(),
                    instances: missing,
                });
            }
        }
    } else {
        let desired = if draining { 0 } else { desired_now.max(0) };
        let (min_healthy, max_total) = deployment_bounds(
            desired,
            dc.minimum_healthy_percent.unwrap_or(100),
            dc.maximum_percent.unwrap_or(200),
        );
        let is_primary = |t: &TaskRecord| deployment_of(t) == primary_id;
        let running = |t: &TaskRecord| t.state() == TaskState::Running;
        // Available: old tasks while RUNNING, new ones once healthy.
        let counts = |t: &TaskRecord| {
            if is_primary(t) {
                is_healthy(t)
            } else {
                running(t)
            }
        };
        let mut available = live.iter().filter(|tv| counts(tv.rec)).count();
        let mut primary_live: Vec<&TaskRecord> = live
            .iter()
            .filter(|tv| is_primary(tv.rec) && tv.instance_active)
            .map(|tv| tv.rec)
            .collect();
        // Tasks that must go: old deployments, and tasks on instances that are not ACTIVE;
        // those not running first, then the oldest.
        let mut leaving: Vec<&TaskRecord> = live
            .iter()
            .filter(|tv| !is_primary(tv.rec) || !tv.instance_active)
            .map(|tv| tv.rec)
            .collect();
        leaving.sort_by_key(|t| (running(t), t.task.created_at.map(|c| (c * 1000.0) as i64)));
        let mut total = live.len();
        for t in leaving {
            if !counts(t) {
                to_stop.push((t.id.clone(), scaling.clone()));
                total -= 1;
            } else if available > min_healthy || draining {
                to_stop.push((t.id.clone(), scaling.clone()));
                available -= 1;
                total -= 1;
            }
        }
        // Scale in: the newest, unhealthy first.
        primary_live.sort_by_key(|t| {
            (
                is_healthy(t),
                std::cmp::Reverse(t.task.created_at.map(|c| (c * 1000.0) as i64)),
            )
        });
        while primary_live.len() > desired as usize {
            let t = primary_live.remove(0);
            to_stop.push((t.id.clone(), "Service scaled in".into()));
            total -= 1;
        }
        let want = (desired as usize).saturating_sub(primary_live.len());
        let room = max_total.saturating_sub(total);
        let n = want.min(room);
        if n > 0 && !primary_failed && now >= rec.next_launch_at {
            match rec
                .service
                .capacity_provider_strategy
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                // With a strategy, launch what each provider lacks of its share.
                Some(strategy) => {
                    let mut left = n;
                    for (provider, share) in
                        crate::ops::capacity_providers::split(strategy, desired as usize)
                    {
                        let have = primary_live
                            .iter()
                            .filter(|t| {
                                t.task.capacity_provider_name.as_deref() == Some(provider.as_str())
                            })
                            .count();
                        let k = share.saturating_sub(have).min(left);
                        if k > 0 {
                            left -= k;
                            launches.push(Launch::Replica {
                                deployment: primary_id.clone(),
                                task_definition: primary_td.clone(),
                                count: k,
                                provider: Some(provider),
                            });
                        }
                    }
                }
                None => launches.push(Launch::Replica {
                    deployment: primary_id.clone(),
                    task_definition: primary_td.clone(),
                    count: n,
                    provider: None,
                }),
            }
        }
    }
    if !to_stop.is_empty() {
        rec.steady = false;
        let list: Vec<String> = to_stop
            .iter()
            .filter_map(|(id, _)| view.tasks.iter().find(|tv| tv.rec.id == *id))
            .map(|tv| {
                format!(
                    "(task {})",
                    short(tv.rec.task.task_arn.as_deref().unwrap_or_default())
                )
            })
            .collect();
        event_at(
            &mut rec,
            format!(
                "(service {name}) has stopped {} running tasks: {}.",
                list.len(),
                list.join(" ")
            ),
            now,
        );
    }

    // 4. Drop drained deployments; note completion and steady state.
    let alive: Vec<&str> = view
        .tasks
        .iter()
        .filter(|tv| tv.rec.state() != TaskState::Stopped)
        .map(|tv| deployment_of(tv.rec))
        .collect();
    if let Some(ds) = rec.service.deployments.as_mut() {
        ds.retain(|d| {
            d.status.as_deref() == Some("PRIMARY")
                || alive.iter().any(|a| Some(*a) == d.id.as_deref())
        });
    }
    let live_primary_healthy = view
        .tasks
        .iter()
        .map(|tv| tv.rec)
        .filter(|t| {
            t.state() != TaskState::Stopped && t.desired_status() != "STOPPED" && is_healthy(t)
        })
        .filter(|t| deployment_of(t) == primary_id)
        .count();
    let live_all = alive.len();
    let desired = rec.service.desired_count.unwrap_or(0).max(0) as usize;
    let single = rec
        .service
        .deployments
        .as_ref()
        .is_some_and(|d| d.len() == 1);
    if draining && live_all == 0 {
        rec.service.status = Some("INACTIVE".into());
        if let Some(ds) = rec.service.deployments.as_mut() {
            ds.clear();
        }
    } else if single
        && launches.is_empty()
        && to_stop.is_empty()
        && live_primary_healthy == desired
        && live_all == desired
    {
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
            event_at(
                &mut rec,
                format!("(service {name}) has reached a steady state."),
                now,
            );
        }
    }
    if let Some(d) = rec
        .service
        .deployments
        .iter_mut()
        .flatten()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
    {
        d.desired_count = rec.service.desired_count;
    }
    ServiceStep {
        service: rec,
        counted,
        healthy,
        stops: to_stop,
        launches,
    }
}
