//! Secrets Manager (`secretsmanager.<Op>`, AWS JSON 1.1, signed for `secretsmanager`, the
//! server's region): secrets with versions and staging labels (`AWSCURRENT`, `AWSPREVIOUS`,
//! `AWSPENDING` and any of the caller's), deletion after a recovery window or at once, tags.
//! Values are sealed at rest; every operation is authorized as `secretsmanager:<Operation>`
//! on the secret's ARN.

mod ops;

use crate::{body, decode, encode, Secrets};
use base64::Engine;
use gantry_api::secretsmanager::*;
use gantry_core::table::BoxFuture;
use gantry_core::{Ask, Call, Dispatch, Gate, Kind, ServiceEntry, ServiceError, TagSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One version of a secret's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionRecord {
    pub id: String,
    pub stages: Vec<String>,
    pub created: f64,
    /// The value, sealed for `<secret name>/<version id>`.
    pub sealed: String,
    /// Set for SecretBinary values.
    pub binary: bool,
}

/// A secret as the store holds it (by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRecord {
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    pub created: f64,
    pub last_changed: f64,
    /// When DeleteSecret scheduled its deletion.
    #[serde(default)]
    pub deleted: Option<f64>,
    /// When the deletion takes effect.
    #[serde(default)]
    pub delete_after: Option<f64>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub versions: Vec<VersionRecord>,
}

pub const SECRETS: Kind<SecretRecord> = Kind::new("secrets");

/// The most versions kept; the oldest without a staging label go first.
const MAX_VERSIONS: usize = 100;

/// Secrets Manager's error for a failure of its own.
pub fn internal(e: String) -> ServiceError {
    tracing::error!(error = %e, "the secret store failed");
    ServiceError::new(
        "InternalServiceError",
        500,
        "An error occurred on the server side.",
    )
}

fn not_found() -> ServiceError {
    ServiceError::new(
        "ResourceNotFoundException",
        400,
        "Secrets Manager can't find the specified secret.",
    )
}

fn invalid_param(m: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidParameterException", 400, m)
}

fn invalid_request(m: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidRequestException", 400, m)
}

fn marked_for_deletion() -> ServiceError {
    invalid_request(
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

struct Service(Arc<Secrets>);

/// Secrets Manager's entry.
pub fn entry(secrets: &Arc<Secrets>) -> ServiceEntry {
    ServiceEntry::json_1_1(
        SIGNING_NAME,
        TARGET_PREFIX,
        secrets.region(),
        Arc::new(Service(secrets.clone())),
    )
}

impl Dispatch for Service {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let b = body(&call)?;
            let s = &self.0;
            let g = &call.gate;
            match call.operation {
                "CreateSecret" => {
                    encode(&s.create(decode(b, "InvalidParameterException")?, g).await?)
                }
                "DescribeSecret" => {
                    encode(&s.describe(decode(b, "InvalidParameterException")?, g)?)
                }
                "ListSecrets" => encode(&s.list(decode(b, "InvalidParameterException")?, g)?),
                "GetSecretValue" => {
                    encode(&s.get_value(decode(b, "InvalidParameterException")?, g)?)
                }
                "PutSecretValue" => encode(
                    &s.put_value(decode(b, "InvalidParameterException")?, g)
                        .await?,
                ),
                "UpdateSecret" => {
                    encode(&s.update(decode(b, "InvalidParameterException")?, g).await?)
                }
                "DeleteSecret" => {
                    encode(&s.delete(decode(b, "InvalidParameterException")?, g).await?)
                }
                "RestoreSecret" => encode(
                    &s.restore(decode(b, "InvalidParameterException")?, g)
                        .await?,
                ),
                "TagResource" => encode(&s.tag(decode(b, "InvalidParameterException")?, g).await?),
                "UntagResource" => {
                    encode(&s.untag(decode(b, "InvalidParameterException")?, g).await?)
                }
                op if Operation::from_name(op).is_some() => Err(ServiceError::not_served(
                    "InvalidRequestException",
                    "Secrets Manager",
                    op,
                )),
                op => Err(ServiceError::unknown_operation(TARGET_PREFIX, op)),
            }
        })
    }
}

/// The tags of secrets, for `aws:ResourceTag` and `secretsmanager:ResourceTag` conditions.
struct SecretTags<'a>(&'a Secrets);

impl TagSource for SecretTags<'_> {
    fn tags_of(&self, arn: &str) -> Vec<(String, String)> {
        self.0
            .secrets
            .snapshot()
            .values()
            .find(|s| s.arn == arn)
            .map(|s| s.tags.clone())
            .unwrap_or_default()
    }
}

fn check_name(name: &str) -> Result<(), ServiceError> {
    let ok = (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if !ok {
        return Err(invalid_param(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ));
    }
    Ok(())
}

fn read_tags(tags: Option<&[Tag]>) -> Result<Vec<(String, String)>, ServiceError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in tags.unwrap_or_default() {
        let (Some(k), Some(v)) = (&t.key, &t.value) else {
            return Err(invalid_param("Each tag needs a Key and a Value."));
        };
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(invalid_param(
                "Tag keys must be 1 to 128 characters and values at most 256.",
            ));
        }
        match out.iter_mut().find(|(x, _)| x == k) {
            Some(e) => e.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    Ok(out)
}

/// A secret's value as a request brings it: string or base64 binary, never both.
fn value(
    string: Option<&String>,
    binary: Option<&String>,
) -> Result<Option<(Vec<u8>, bool)>, ServiceError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(invalid_param(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(s), None) => Ok(Some((s.as_bytes().to_vec(), false))),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|v| Some((v, true)))
            .map_err(|_| invalid_param("SecretBinary must be base64.")),
        (None, None) => Ok(None),
    }
}

/// A client request token (the version id), or a fresh one.
fn version_id(token: Option<&String>) -> Result<String, ServiceError> {
    match token {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t.clone()),
        Some(_) => Err(invalid_param(
            "ClientRequestToken must be 32 to 64 characters long.",
        )),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl SecretRecord {
    fn stages(&self) -> BTreeMap<String, Vec<String>> {
        self.versions
            .iter()
            .filter(|v| !v.stages.is_empty())
            .map(|v| (v.id.clone(), v.stages.clone()))
            .collect()
    }

    fn tags_out(&self) -> Vec<Tag> {
        self.tags
            .iter()
            .map(|(k, v)| Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect()
    }

    /// Adds a version and gives it `stages`; `AWSCURRENT` moving makes the version that had
    /// it `AWSPREVIOUS`.
    fn add_version(&mut self, v: VersionRecord) {
        for stage in &v.stages {
            let had: Vec<usize> = (0..self.versions.len())
                .filter(|&i| self.versions[i].stages.contains(stage))
                .collect();
            for i in had {
                self.versions[i].stages.retain(|s| s != stage);
                if stage == "AWSCURRENT" {
                    for other in &mut self.versions {
                        other.stages.retain(|s| s != "AWSPREVIOUS");
                    }
                    self.versions[i].stages.push("AWSPREVIOUS".into());
                }
            }
        }
        self.versions.push(v);
        while self.versions.len() > MAX_VERSIONS {
            match self.versions.iter().position(|v| v.stages.is_empty()) {
                Some(i) => {
                    self.versions.remove(i);
                }
                None => break,
            }
        }
    }
}

/// A `valueFrom` of a task's `secrets` naming a Secrets Manager secret:
/// `<arn>[:json-key[:version-stage[:version-id]]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub secret: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    /// Reads ECS's `valueFrom`: a secret ARN (7 colon-separated parts), optionally followed by
    /// `json-key`, `version-stage` and `version-id` (empty parts mean "not given"); or a name.
    pub fn parse(value_from: &str) -> SecretRef {
        let parts: Vec<&str> = value_from.split(':').collect();
        if parts.len() < 7 || parts[0] != "arn" {
            return SecretRef {
                secret: value_from.to_string(),
                json_key: None,
                version_stage: None,
                version_id: None,
            };
        }
        let opt = |i: usize| {
            parts
                .get(i)
                .filter(|s| !s.is_empty())
                .map(|s| s.to_string())
        };
        SecretRef {
            secret: parts[..7].join(":"),
            json_key: opt(7),
            version_stage: opt(8),
            version_id: opt(9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_from_names_a_secret_and_optionally_a_key_stage_and_version() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        assert_eq!(SecretRef::parse(arn).secret, arn);
        let r = SecretRef::parse(&format!("{arn}:password::"));
        assert_eq!(
            (r.json_key.as_deref(), r.version_stage, r.version_id),
            (Some("password"), None, None)
        );
        let r = SecretRef::parse(&format!("{arn}::AWSPREVIOUS:"));
        assert_eq!(
            (r.json_key, r.version_stage.as_deref()),
            (None, Some("AWSPREVIOUS"))
        );
        let r = SecretRef::parse(&format!("{arn}:k:AWSCURRENT:v1"));
        assert_eq!(r.version_id.as_deref(), Some("v1"));
        assert_eq!(SecretRef::parse("plain-name").secret, "plain-name");
    }

    #[test]
    fn awscurrent_moving_leaves_awsprevious_behind() {
        let mut s = SecretRecord {
            name: "n".into(),
            arn: "a".into(),
            description: None,
            kms_key_id: None,
            created: 0.0,
            last_changed: 0.0,
            deleted: None,
            delete_after: None,
            tags: Vec::new(),
            versions: Vec::new(),
        };
        let v = |id: &str, stages: &[&str]| VersionRecord {
            id: id.into(),
            stages: stages.iter().map(|s| s.to_string()).collect(),
            created: 0.0,
            sealed: String::new(),
            binary: false,
        };
        s.add_version(v("1", &["AWSCURRENT"]));
        s.add_version(v("2", &["AWSCURRENT"]));
        s.add_version(v("3", &["AWSCURRENT", "blue"]));
        let stages = s.stages();
        assert_eq!(stages.get("1"), None, "the oldest lost every label");
        assert_eq!(stages["2"], ["AWSPREVIOUS"]);
        assert_eq!(stages["3"], ["AWSCURRENT", "blue"]);
        s.add_version(v("4", &["blue"]));
        assert_eq!(s.stages()["3"], ["AWSCURRENT"]);
        assert_eq!(s.stages()["4"], ["blue"]);
    }
}
