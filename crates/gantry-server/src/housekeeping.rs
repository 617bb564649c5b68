//! Periodic, level-triggered upkeep: STOPPED tasks expire after the retention period.

use crate::state::records;
use crate::{now_secs, Server};
use gantry_store::Txn;
use std::sync::Arc;

/// Runs forever; safe to stop and restart at any point.
pub async fn run(server: Arc<Server>) {
    let mut tick = tokio::time::interval(server.config.housekeeping_interval);
    loop {
        tick.tick().await;
        if let Err(e) = expire_stopped_tasks(&server).await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
    }
}

/// Forgets tasks that have been STOPPED for longer than the retention period.
pub async fn expire_stopped_tasks(server: &Server) -> Result<usize, gantry_api::ApiError> {
    let cutoff = now_secs() - server.config.task_retention.as_secs_f64();
    server
        .write(move |st| {
            let expired: Vec<String> = st
                .tasks
                .values()
                .filter(|t| t.is_stopped() && t.task.stopped_at.is_some_and(|at| at < cutoff))
                .map(|t| t.id.clone())
                .collect();
            let mut txn = Txn::new();
            for id in &expired {
                st.remove_task(id);
                txn = records::TASKS.delete(txn, id);
            }
            Ok((expired.len(), txn))
        })
        .await
}
