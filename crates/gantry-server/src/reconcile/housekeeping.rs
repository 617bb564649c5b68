//! Housekeeping, as a pure step: STOPPED tasks expire after the retention period.

use super::Timing;
use crate::state::TaskRecord;

/// The tasks STOPPED for longer than the retention period at `now`.
pub fn expired<'a>(
    tasks: impl IntoIterator<Item = &'a TaskRecord>,
    now: f64,
    timing: &Timing,
) -> Vec<String> {
    let cutoff = now - timing.task_retention;
    tasks
        .into_iter()
        .filter(|t| t.is_stopped() && t.task.stopped_at.is_some_and(|at| at < cutoff))
        .map(|t| t.id.clone())
        .collect()
}
