//! The scheduler's view of each cluster, kept between RunTask calls.
//!
//! Building every instance's view for every RunTask costs O(instances + tasks) in allocations;
//! at a thousand instances that dominates. Instead each cluster keeps a
//! [`gantry_scheduler::Snapshot`]; writes mark the instances they touch dirty, and the next
//! placement refreshes just those (a full rebuild only when instances come or go). Agent
//! connectivity, which changes with time alone, is refreshed on every use. Plans are still
//! re-checked against the state when they are committed.

use crate::ops::instances::{agent_connected, placement_view};
use crate::state::State;
use crate::Server;
use gantry_scheduler::Snapshot;
use std::collections::HashMap;

struct ClusterCache {
    topology: u64,
    snap: Snapshot,
    /// Instance ids, in snapshot order.
    ids: Vec<String>,
    index: HashMap<String, usize>,
}

/// The pseudo-cluster of every host that serves FARGATE tasks (of any cluster).
pub const FARGATE_POOL: &str = "\u{0}fargate";

/// The pool of a cluster's instances that stand for one capacity provider.
pub fn provider_pool_key(cluster: &str, provider: &str) -> String {
    format!("\u{0}cp\u{0}{cluster}\u{0}{provider}")
}

fn provider_pool(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("\u{0}cp\u{0}")?;
    rest.split_once('\u{0}')
}

#[derive(Default)]
pub struct PlacementCache {
    clusters: HashMap<String, ClusterCache>,
}

impl PlacementCache {
    /// The cluster's snapshot, current with `st`, and the instance id of each entry.
    pub fn snapshot<'a>(
        &'a mut self,
        server: &Server,
        st: &State,
        cluster: &str,
        now: f64,
    ) -> (&'a mut Snapshot, &'a [String]) {
        let stale = self
            .clusters
            .get(cluster)
            .is_none_or(|c| c.topology != st.topology);
        if stale {
            let ids: Vec<String> = st
                .instances
                .values()
                .filter(|r| r.status() != "INACTIVE")
                .filter(|r| match provider_pool(cluster) {
                    Some((c, p)) => {
                        r.cluster == c
                            && !r.fargate_only
                            && r.capacity_provider.as_deref() == Some(p)
                    }
                    None if cluster == FARGATE_POOL => r.fargate,
                    None => r.cluster == cluster && !r.fargate_only,
                })
                .map(|r| r.id.clone())
                .collect();
            let views = ids
                .iter()
                .filter_map(|id| st.instances.get(id))
                .map(|r| placement_view(server, st, r, now))
                .collect();
            let index = ids
                .iter()
                .enumerate()
                .map(|(ix, id)| (id.clone(), ix))
                .collect();
            st.take_dirty(|id| ids.contains(&id.to_string()));
            self.clusters.insert(
                cluster.to_string(),
                ClusterCache {
                    topology: st.topology,
                    snap: Snapshot::new(views),
                    ids,
                    index,
                },
            );
        }
        let Some(c) = self.clusters.get_mut(cluster) else {
            unreachable!("inserted above")
        };
        if !stale {
            for id in st.take_dirty(|id| c.index.contains_key(id)) {
                if let (Some(&ix), Some(r)) = (c.index.get(&id), st.instances.get(&id)) {
                    c.snap.replace(ix, placement_view(server, st, r, now));
                }
            }
            for (ix, id) in c.ids.iter().enumerate() {
                if let Some(r) = st.instances.get(id) {
                    c.snap
                        .set_agent_connected(ix, agent_connected(server, r, now));
                }
            }
        }
        (&mut c.snap, &c.ids)
    }
}
