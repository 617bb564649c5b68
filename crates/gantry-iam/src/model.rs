//! IAM's records as the store holds them (`iam/global/<kind>/<id>`), and the names, ids and
//! times they carry.

use gantry_core::Kind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A tag on a user or role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Inline policies by name, with their documents as given.
pub type Inline = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub name: String,
    pub id: String,
    pub path: String,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// ARNs of attached managed policies, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub inline: Inline,
    /// The groups the user is in, by their ids in the store (lower-case names).
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    pub id: String,
    /// The owning user's name.
    pub user: String,
    pub secret: String,
    pub active: bool,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub inline: Inline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    /// The trust policy document, as given.
    pub trust: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Seconds, 3600 to 43200.
    pub max_session: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub inline: Inline,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersion {
    /// `v1`, `v2`, ...
    pub id: String,
    pub document: String,
    pub created: i64,
}

/// A customer-managed policy (AWS-managed ones are built in: [`crate::managed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedPolicy {
    pub name: String,
    pub id: String,
    pub path: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
    /// The number the next version gets.
    pub next_version: u32,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ManagedPolicy {
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.id == self.default_version)
            .map(|v| v.document.as_str())
    }
}

/// Temporary credentials from AssumeRole or GetSessionToken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub access_key_id: String,
    pub secret: String,
    pub token: String,
    pub expires_at: i64,
    /// Whose session: `root`, `user/<name>` (GetSessionToken) or
    /// `assumed-role/<role>/<session name>` (AssumeRole).
    pub owner: String,
    /// `AROA...:<session name>` for role sessions, the user's id otherwise.
    pub user_id: String,
    /// The ECS task a task-role session was issued for (ended when the task stops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

pub const USERS: Kind<User> = Kind::new("users");
pub const ACCESS_KEYS: Kind<AccessKey> = Kind::new("access-keys");
pub const GROUPS: Kind<Group> = Kind::new("groups");
pub const ROLES: Kind<Role> = Kind::new("roles");
pub const POLICIES: Kind<ManagedPolicy> = Kind::new("policies");
pub const SESSIONS: Kind<Session> = Kind::new("sessions");

/// The store id of a named entity: IAM names are unique regardless of case.
pub fn id_of(name: &str) -> String {
    name.to_ascii_lowercase()
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A random IAM unique id (21 characters) with its kind's prefix (`AIDA` users, `AROA`
/// roles, `AGPA` groups, `ANPA` policies).
pub fn new_id(prefix: &str) -> String {
    random_id(prefix, 17)
}

/// A random access key id (20 characters): `AKIA` long-term, `ASIA` temporary.
pub fn new_key_id(prefix: &str) -> String {
    random_id(prefix, 16)
}

fn random_id(prefix: &str, n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let tail: String = (0..n)
        .map(|_| ID_CHARS[rng.random_range(0..ID_CHARS.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A random secret of `n` characters from the alphabet AWS's secrets use.
pub fn new_secret(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// ISO 8601 in UTC, as IAM's timestamps are written (`2026-12-01T21:30:00Z`).
pub fn iso8601(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00Z".to_string(),
    }
}

/// IAM's quota of access keys per user.
pub const ACCESS_KEYS_PER_USER: usize = 2;
/// IAM's default quota of managed policies attached to one user, group or role.
pub const ATTACHED_POLICIES_PER_ENTITY: usize = 10;
/// IAM's quota of versions per managed policy.
pub const VERSIONS_PER_POLICY: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_times() {
        let id = new_id("AIDA");
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
        assert_eq!(new_key_id("AKIA").len(), 20);
        assert_eq!(iso8601(1_440_938_160), "2015-08-30T12:36:00Z");
        assert_eq!(id_of("Dev"), "dev");
    }
}
