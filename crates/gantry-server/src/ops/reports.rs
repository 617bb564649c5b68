//! What agents report about their tasks: the agent endpoint's batched reports and ECS's
//! SubmitTaskStateChange / SubmitContainerStateChange, applied forward-only.

use super::clusters;
use super::tasks::find_id;
use crate::state::{records, State, TaskRecord, TaskState};
use crate::{now_secs, Server};
use gantry_api::agent::TaskReport;
use gantry_api::model::*;
use gantry_api::ApiError;
use gantry_core::Caller;
use gantry_store::Txn;

/// Applies an agent's report to a task: states only move forward; the first stop code and
/// reason win. Returns false when the report was ignored.
pub fn apply_report(
    st: &mut State,
    instance: &str,
    r: &TaskReport,
    now: f64,
) -> Option<TaskRecord> {
    let id = r.task_arn.rsplit('/').next()?;
    let t = st.tasks.get_mut(id).filter(|t| t.instance == instance)?;
    let old_status = t.last_status().to_string();
    let old = t.state();
    // An unknown state is no move at all.
    let new = TaskState::parse(&r.last_status).unwrap_or(TaskState::Provisioning);
    let task = &mut t.task;
    let mut changed = false;
    if new > old {
        task.last_status = Some(new.as_str().to_string());
        changed = true;
        if new >= TaskState::Running && task.started_at.is_none() && new != TaskState::Stopped {
            task.started_at = Some(r.started_at.unwrap_or(now));
            task.connectivity = Some(Connectivity::Connected);
            task.connectivity_at = Some(now);
        }
        if new >= TaskState::Stopping {
            task.desired_status = Some("STOPPED".into());
            task.stopping_at.get_or_insert(now);
        }
        if new == TaskState::Stopped {
            task.stopped_at = Some(now);
            task.execution_stopped_at = Some(r.execution_stopped_at.unwrap_or(now));
        }
    }
    if new >= TaskState::Stopping {
        if task.stop_code.is_none() && r.stop_code.is_some() {
            task.stop_code = r.stop_code;
            changed = true;
        }
        if task.stopped_reason.is_none() && r.stopped_reason.is_some() {
            task.stopped_reason = r.stopped_reason.clone();
            changed = true;
        }
    }
    for (field, v) in [
        (&mut task.pull_started_at, r.pull_started_at),
        (&mut task.pull_stopped_at, r.pull_stopped_at),
    ] {
        if field.is_none() && v.is_some() {
            *field = v;
            changed = true;
        }
    }
    if r.health_status.is_some() && task.health_status != r.health_status {
        task.health_status = r.health_status;
        changed = true;
    }
    let rank = |s: &str| match s {
        "PENDING" => 0,
        "RUNNING" => 1,
        "STOPPED" => 2,
        _ => 0,
    };
    for cr in &r.containers {
        let Some(c) = task
            .containers
            .iter_mut()
            .flatten()
            .find(|c| c.name.as_deref() == Some(cr.name.as_str()))
        else {
            continue;
        };
        let before = c.clone();
        if rank(&cr.last_status) > rank(c.last_status.as_deref().unwrap_or("PENDING")) {
            c.last_status = Some(cr.last_status.clone());
        }
        if cr.runtime_id.is_some() {
            c.runtime_id = cr.runtime_id.clone();
        }
        if cr.exit_code.is_some() {
            c.exit_code = cr.exit_code;
        }
        if cr.reason.is_some() && c.reason.is_none() {
            c.reason = cr.reason.clone();
        }
        if !cr.network_bindings.is_empty() {
            c.network_bindings = Some(cr.network_bindings.clone());
        }
        if cr.health_status.is_some() {
            c.health_status = cr.health_status;
        }
        if cr.image_digest.is_some() {
            c.image_digest = cr.image_digest.clone();
        }
        changed |= *c != before;
    }
    if !changed {
        return None;
    }
    task.version = Some(task.version.unwrap_or(1) + 1);
    let t = t.clone();
    if t.is_stopped() && old_status != "STOPPED" && !t.security_groups.is_empty() {
        super::security_groups::bump_firewalled(st);
    }
    if old_status != t.last_status() {
        st.tally(&t, &old_status, -1);
        st.tally(&t, t.last_status(), 1);
    }
    Some(t)
}

/// Applies a report that arrived through the public API (SubmitTaskStateChange,
/// SubmitContainerStateChange), as the ECS agent sends them.
async fn submit(
    server: &Server,
    cluster: Option<String>,
    task: Option<String>,
    report: TaskReport,
) -> Result<String, ApiError> {
    let task = task.ok_or_else(|| ApiError::invalid("Missing required parameter 'task'."))?;
    let now = now_secs();
    server
        .write(move |st| {
            let cluster = clusters::active(server, st, cluster.as_deref())?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let id = find_id(server, st, &cluster, &task)
                .ok_or_else(|| ApiError::invalid("The referenced task was not found."))?;
            let instance = st
                .tasks
                .get(&id)
                .map(|t| t.instance.clone())
                .unwrap_or_default();
            let mut report = report;
            report.task_arn = server.arns.task(&cluster, &id);
            let txn = match apply_report(st, &instance, &report, now) {
                Some(t) => records::TASKS.put(Txn::new(), &id, &t),
                None => Txn::new(),
            };
            st.bump(&instance);
            Ok(("ACK".to_string(), txn))
        })
        .await
}

fn container_reports(changes: &[ContainerStateChange]) -> Vec<gantry_api::agent::ContainerReport> {
    changes
        .iter()
        .map(|c| gantry_api::agent::ContainerReport {
            name: c.container_name.clone().unwrap_or_default(),
            runtime_id: c.runtime_id.clone(),
            last_status: c.status.clone().unwrap_or_default(),
            exit_code: c.exit_code,
            reason: c.reason.clone(),
            network_bindings: c.network_bindings.clone().unwrap_or_default(),
            health_status: None,
            image_digest: c.image_digest.clone(),
        })
        .collect()
}

pub async fn submit_task_state_change(
    server: &Server,
    req: SubmitTaskStateChangeRequest,
    _: &Caller<'_>,
) -> Result<SubmitTaskStateChangeResponse, ApiError> {
    let status = req.status.clone().unwrap_or_default();
    if !gantry_api::agent::TASK_STATES.contains(&status.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid 'status' {status:?}: expected a task state such as RUNNING or STOPPED."
        )));
    }
    let report = TaskReport {
        task_arn: String::new(),
        last_status: status,
        stopped_reason: req.reason.clone(),
        pull_started_at: req.pull_started_at,
        pull_stopped_at: req.pull_stopped_at,
        execution_stopped_at: req.execution_stopped_at,
        containers: container_reports(req.containers.as_deref().unwrap_or_default()),
        ..TaskReport::default()
    };
    let ack = submit(server, req.cluster, req.task, report).await?;
    Ok(SubmitTaskStateChangeResponse {
        acknowledgment: Some(ack),
    })
}

pub async fn submit_container_state_change(
    server: &Server,
    req: SubmitContainerStateChangeRequest,
    _: &Caller<'_>,
) -> Result<SubmitContainerStateChangeResponse, ApiError> {
    let change = ContainerStateChange {
        container_name: req.container_name.clone(),
        runtime_id: req.runtime_id.clone(),
        exit_code: req.exit_code,
        reason: req.reason.clone(),
        status: req.status.clone(),
        network_bindings: req.network_bindings.clone(),
        image_digest: None,
    };
    if change
        .container_name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Err(ApiError::invalid(
            "Missing required parameter 'containerName'.",
        ));
    }
    let report = TaskReport {
        containers: container_reports(&[change]),
        ..TaskReport::default()
    };
    let ack = submit(server, req.cluster, req.task, report).await?;
    Ok(SubmitContainerStateChangeResponse {
        acknowledgment: Some(ack),
    })
}
