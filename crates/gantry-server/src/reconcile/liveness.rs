//! Instance liveness, as a pure step: an agent silent for `agent_timeout` shows its tasks
//! DISCONNECTED; past `lost_timeout` they are stopped (services replace them), and past the
//! `lost_grace` after that they count as STOPPED without the agent's word. ECS, unlike this,
//! leaves the tasks of a disconnected agent alone.

use super::Timing;
use crate::state::{TaskRecord, TaskState};
use gantry_api::model::{Connectivity, TaskStopCode};

/// Whether an agent is connected: a poll is open, or one ended within the timeout.
pub fn connected(
    has_agent: bool,
    open_polls: u32,
    last_seen: f64,
    now: f64,
    timing: &Timing,
) -> bool {
    has_agent && (open_polls > 0 || now - last_seen <= timing.agent_timeout)
}

/// An agent's instance and its unstopped tasks.
#[derive(Debug, Clone)]
pub struct InstanceView<'a> {
    pub arn: &'a str,
    pub connected: bool,
    pub last_seen: f64,
    pub tasks: Vec<&'a TaskRecord>,
}

/// A task to store anew; `stopped` when this change makes it STOPPED.
#[derive(Debug, Clone)]
pub struct TaskChange {
    pub task: TaskRecord,
    pub was: TaskState,
}

/// What the instances' liveness means for their tasks.
pub fn step(instances: &[InstanceView<'_>], now: f64, timing: &Timing) -> Vec<TaskChange> {
    let mut out = Vec::new();
    for i in instances {
        let want = if i.connected {
            Connectivity::Connected
        } else {
            Connectivity::Disconnected
        };
        for t in &i.tasks {
            if t.is_stopped() {
                continue;
            }
            let mut t2 = (*t).clone();
            let mut changed = false;
            if t2.task.connectivity.is_some() && t2.task.connectivity != Some(want) {
                t2.task.connectivity = Some(want);
                t2.task.connectivity_at = Some(now);
                changed = true;
            }
            if !i.connected && now - i.last_seen > timing.lost_timeout {
                if t2.desired_status() != "STOPPED" {
                    t2.task.desired_status = Some("STOPPED".into());
                    t2.task
                        .stop_code
                        .get_or_insert(TaskStopCode::ServiceSchedulerInitiated);
                    t2.task.stopped_reason.get_or_insert_with(|| {
                        format!(
                            "Task stopped because its container instance {} was lost (no agent contact).",
                            i.arn
                        )
                    });
                    t2.task.stopping_at.get_or_insert(now);
                    changed = true;
                }
                if now - t2.task.stopping_at.unwrap_or(now) > timing.lost_grace {
                    t2.task.last_status = Some(TaskState::Stopped.as_str().into());
                    t2.task.stopped_at = Some(now);
                    changed = true;
                }
            }
            if changed {
                out.push(TaskChange {
                    task: t2,
                    was: t.state(),
                });
            }
        }
    }
    out
}
