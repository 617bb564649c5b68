//! The control plane's in-memory state: every record, indexed for reads, and how each record
//! maps to a key in the durable store.
//!
//! Writers change the state and queue the matching store transaction while holding the state's
//! write lock (so store order equals memory order), then wait for durability before answering.

use gantry_api::model::{Cluster, SettingName, Tag, TaskDefinition, TaskDefinitionStatus};
use gantry_store::{Store, StoreError, Txn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A task definition revision with its tags (ECS keeps tags beside the definition).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDefRecord {
    pub task_definition: TaskDefinition,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl TaskDefRecord {
    pub fn status(&self) -> TaskDefinitionStatus {
        self.task_definition
            .status
            .unwrap_or(TaskDefinitionStatus::Active)
    }
}

/// A family: its revisions and the highest revision ever issued (never reused, even after
/// every revision was deleted).
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub last_revision: i32,
    pub revisions: BTreeMap<i32, TaskDefRecord>,
}

impl Family {
    pub fn has_active(&self) -> bool {
        self.revisions
            .values()
            .any(|r| r.status() == TaskDefinitionStatus::Active)
    }
}

/// An account setting as stored: per principal ARN, or the account default (`principal` empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingRecord {
    pub name: SettingName,
    pub value: String,
    pub principal: String,
}

#[derive(Debug, Default)]
pub struct State {
    /// Clusters by name, ACTIVE and INACTIVE (deleted clusters stay describable).
    pub clusters: BTreeMap<String, Cluster>,
    pub families: BTreeMap<String, Family>,
    /// Keyed by (principal ARN or "" for the account default, setting name).
    pub settings: BTreeMap<(String, SettingName), SettingRecord>,
}

pub mod keys {
    pub fn cluster(name: &str) -> String {
        format!("clusters/{name}")
    }
    pub fn task_def(family: &str, revision: i32) -> String {
        format!("taskdefs/{family}/{revision:010}")
    }
    pub fn family(family: &str) -> String {
        format!("families/{family}")
    }
    pub fn setting(principal: &str, name: &str) -> String {
        format!("settings/{name}/{principal}")
    }
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    // The records are plain data with string keys: serialisation cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// Adds a record write to a transaction.
pub fn put<T: Serialize>(txn: Txn, key: String, value: &T) -> Txn {
    txn.put(key, to_json(value))
}

#[derive(Serialize, Deserialize)]
struct FamilyMeta {
    last_revision: i32,
}

pub fn put_family(txn: Txn, name: &str, f: &Family) -> Txn {
    put(
        txn,
        keys::family(name),
        &FamilyMeta {
            last_revision: f.last_revision,
        },
    )
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("corrupt record {key}: {error}")]
    Corrupt {
        key: String,
        error: serde_json::Error,
    },
}

fn parse<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T, LoadError> {
    serde_json::from_slice(value).map_err(|error| LoadError::Corrupt {
        key: key.to_string(),
        error,
    })
}

impl State {
    /// Rebuilds the state from the store.
    pub async fn load(store: &dyn Store) -> Result<State, LoadError> {
        let mut st = State::default();
        for kv in store.range("clusters/").await?.0 {
            let c: Cluster = parse(&kv.key, &kv.value)?;
            st.clusters
                .insert(c.cluster_name.clone().unwrap_or_default(), c);
        }
        for kv in store.range("families/").await?.0 {
            let m: FamilyMeta = parse(&kv.key, &kv.value)?;
            let name = kv.key.trim_start_matches("families/").to_string();
            st.families.entry(name).or_default().last_revision = m.last_revision;
        }
        for kv in store.range("taskdefs/").await?.0 {
            let r: TaskDefRecord = parse(&kv.key, &kv.value)?;
            let family = r.task_definition.family.clone().unwrap_or_default();
            let rev = r.task_definition.revision.unwrap_or_default();
            let f = st.families.entry(family).or_default();
            f.last_revision = f.last_revision.max(rev);
            f.revisions.insert(rev, r);
        }
        for kv in store.range("settings/").await?.0 {
            let s: SettingRecord = parse(&kv.key, &kv.value)?;
            st.settings.insert((s.principal.clone(), s.name), s);
        }
        Ok(st)
    }
}
