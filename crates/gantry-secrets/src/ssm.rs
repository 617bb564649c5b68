//! SSM Parameter Store (`AmazonSSM.<Op>`, AWS JSON 1.1, signed for `ssm`), as boto3's `ssm`
//! client and `aws ssm` expect it.
//!
//! Parameters (`String`, `StringList`, `SecureString`) are named plainly (`db-host`) or by
//! path (`/app/prod/db-host`); every write adds a version (1, 2, ...), labels name versions,
//! and reads take `name`, `name:<version>`, `name:<label>` or the parameter's ARN. Every value
//! of every type is sealed at rest ([`crate::seal`], for the record `ssm:<name>:<version>`),
//! and none is ever logged or written into an error.
//!
//! Served: PutParameter, GetParameter, GetParameters, GetParametersByPath, DeleteParameter,
//! DeleteParameters, DescribeParameters, GetParameterHistory, LabelParameterVersion,
//! UnlabelParameterVersion, AddTagsToResource, RemoveTagsFromResource, ListTagsForResource
//! (ResourceType `Parameter`). Each authorizes `ssm:<Operation>` at the gate on the
//! parameter's ARN (`arn:aws:ssm:<region>:<account>:parameter/<name without its leading
//! slash>`; GetParametersByPath the path's, DescribeParameters `*`), with the request's tags
//! as `aws:RequestTag/<key>` and `aws:TagKeys`, and the parameters' own for
//! `aws:ResourceTag/<key>`.
//!
//! Where gantry differs from AWS: the Standard tier only (Advanced and parameter policies are
//! refused, Intelligent-Tiering resolves to Standard); `DataType` `text` only; there is no
//! KMS, so a `KeyId` is recorded and answered but every value is sealed with the
//! installation's key, and `WithDecryption` needs no `kms:Decrypt` (as with AWS's default
//! key, whose key policy allows the account); `AllowedPattern` takes the common subset of
//! Java's regular expressions (see `ssm/pattern.rs`) and refuses the rest; names under
//! `/aws/` are refused as every `aws`/`ssm` prefix is (AWS's public parameters are not
//! served). As AWS does, a 101st version pushes out the oldest unless that one has a label.
//! Path queries (GetParametersByPath `/`, the `Path` filter) see plain names (`foo`) at the
//! root, and `foo` and `/foo`, which share an ARN, are told apart by name only.

mod filters;
mod ops;
mod pattern;
mod tags;
#[cfg(test)]
mod tests;

use crate::Secrets;
use base64::Engine;
use gantry_api::ssm::{
    Parameter, ParameterHistory, ParameterMetadata, ParameterTier, ParameterType,
};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, Kind, ServiceEntry, ServiceError, TagSource};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A parameter as the store holds it: its versions, oldest first, and its tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterRecord {
    pub name: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub versions: Vec<ParameterVersion>,
}

/// One version of a parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParameterVersion {
    pub version: i64,
    #[serde(rename = "type")]
    pub kind: ParameterType,
    /// The value, sealed for `ssm:<name>:<version>` (whatever the type).
    pub sealed: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    /// SecureString's KMS key as the request named it (`alias/aws/ssm` by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub data_type: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Seconds since the epoch.
    pub modified: f64,
    /// The ARN of who wrote it.
    pub modified_by: String,
}

impl ParameterRecord {
    /// The newest version (every record has one).
    fn latest(&self) -> Option<&ParameterVersion> {
        self.versions.last()
    }
}

pub const PARAMETERS: Kind<ParameterRecord> = Kind::new("parameters");

/// SSM's error for a failure of its own.
pub fn internal(e: String) -> ServiceError {
    tracing::error!(error = %e, "the parameter store failed");
    ServiceError::new("InternalServerError", 500, "An internal error occurred.")
}

// ---- errors, in SSM's shapes ----

pub(crate) fn validation(message: impl Into<String>) -> ServiceError {
    ServiceError::new("ValidationException", 400, message)
}

fn not_found(name: &str) -> ServiceError {
    ServiceError::new(
        "ParameterNotFound",
        400,
        format!("Parameter {name} not found."),
    )
}

fn version_not_found(name: &str, version: impl std::fmt::Display) -> ServiceError {
    ServiceError::new(
        "ParameterVersionNotFound",
        400,
        format!(
            "Systems Manager could not find version {version} of {name}. Verify the version and try again."
        ),
    )
}

/// AWS's words for a name that breaks the naming rules.
const NAME_RULES: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

/// AWS's words for a path that breaks the naming rules.
const PATH_RULES: &str = "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.";

/// The most levels a name has (`/a/b/c` has three).
const MAX_LEVELS: usize = 15;
/// The most characters of a name's ARN (AWS counts the ARN's prefix in the name's 1011).
const MAX_ARN: usize = 1011;
/// The most versions a parameter keeps.
const MAX_VERSIONS: usize = 100;
/// The most labels on one version.
const MAX_LABELS: usize = 10;
/// The most tags on one parameter.
const MAX_TAGS: usize = 50;
/// The longest Standard-tier value.
const MAX_VALUE: usize = 4096;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

fn reserved(first_level: &str) -> bool {
    let l = first_level.to_ascii_lowercase();
    l.starts_with("aws") || l.starts_with("ssm")
}

/// A version selector: `name:3` or `name:prod`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Version(i64),
    Label(String),
}

/// What a request names: a parameter by name or ARN, maybe with a selector.
#[derive(Debug, Clone)]
struct Reference {
    /// The name (for an ARN, the name its resource gives, with `/` when it has a path).
    name: String,
    /// From an ARN whose resource `parameter/foo` may name `foo` or `/foo`.
    bare_from_arn: bool,
    /// An ARN of another region or account: nothing here.
    foreign: bool,
    selector: Option<Selector>,
    /// As the request wrote it, for the answer's `Selector` (`:3`, `:prod`).
    selector_text: Option<String>,
    /// The ARN to authorize on (without the selector).
    arn: String,
}

impl Reference {
    /// How the request named it (for InvalidParameters and messages).
    fn shown(&self) -> String {
        match &self.selector_text {
            Some(s) => format!("{}:{s}", self.name),
            None => self.name.clone(),
        }
    }
}

fn selector(text: &str, whole: &str) -> Result<Selector, ServiceError> {
    if text.is_empty() || text.contains(':') {
        return Err(validation(format!(
            "Invalid parameter reference {whole}: a selector follows one ':' (name:<version> or name:<label>)."
        )));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(Selector::Version)
            .map_err(|_| validation(format!("Invalid parameter version in {whole}.")));
    }
    Ok(Selector::Label(text.to_string()))
}

/// The parameter store's view of [`Secrets`]: its helpers live here, not on `Secrets`, so
/// that they cannot collide with Secrets Manager's.
#[derive(Clone, Copy)]
struct Params<'a>(&'a Secrets);

impl Secrets {
    /// The current value of a parameter, opened (SecureString included): what the agent
    /// injects as a task's `secrets` from `valueFrom`. `name_or_arn` is a name, the
    /// parameter's ARN, and may end in a selector (`name:3`, `name:prod`), honoured as
    /// GetParameter honours it.
    ///
    /// This authorizes nothing: the caller has already authorized the task's execution role
    /// for `ssm:GetParameters` on the parameter's ARN. Errors are SSM's (ParameterNotFound,
    /// ParameterVersionNotFound, ValidationException for a malformed reference) and never
    /// hold the value.
    pub fn parameter_value(&self, name_or_arn: &str) -> Result<String, ServiceError> {
        let p = Params(self);
        let r = p.reference(name_or_arn)?;
        let rows = self.parameters.snapshot();
        let rec = p.find(&rows, &r).ok_or_else(|| not_found(&r.shown()))?;
        let v = pick(rec, &r)?;
        p.open_value(&rec.name, v)
    }
}

impl Params<'_> {
    /// The ARN of the parameter `name`.
    fn parameter_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:parameter/{}",
            self.0.region,
            self.0.account,
            name.strip_prefix('/').unwrap_or(name)
        )
    }

    /// The sealing context of a version: the record it belongs to.
    fn context(name: &str, version: i64) -> String {
        format!("ssm:{name}:{version}")
    }

    fn seal_value(&self, name: &str, version: i64, value: &str) -> String {
        self.0
            .sealer
            .seal(&Self::context(name, version), value.as_bytes())
    }

    /// The value of a version, opened.
    fn open_value(&self, name: &str, v: &ParameterVersion) -> Result<String, ServiceError> {
        let bytes = self
            .0
            .sealer
            .open(&Self::context(name, v.version), &v.sealed)
            .map_err(|e| internal(format!("parameter {name} version {}: {e}", v.version)))?;
        String::from_utf8(bytes).map_err(|_| {
            internal(format!(
                "parameter {name} version {} is not text",
                v.version
            ))
        })
    }

    /// Parses how a request names a parameter (`name`, `name:3`, `name:label`, an ARN).
    fn reference(&self, input: &str) -> Result<Reference, ServiceError> {
        let input = input.trim_matches(' ');
        if let Some(rest) = input.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [partition, service, region, account, resource] = parts[..] else {
                return Err(validation(format!("{input} is not a parameter ARN.")));
            };
            let Some(path) = resource.strip_prefix("parameter/") else {
                return Err(validation(format!(
                    "{input} is not a parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)."
                )));
            };
            if service != "ssm" || path.is_empty() {
                return Err(validation(format!(
                    "{input} is not a parameter ARN (arn:aws:ssm:<region>:<account>:parameter/<name>)."
                )));
            }
            let (path, sel) = match path.split_once(':') {
                Some((p, s)) => (p, Some(s)),
                None => (path, None),
            };
            let name = if path.contains('/') {
                format!("/{path}")
            } else {
                path.to_string()
            };
            return Ok(Reference {
                bare_from_arn: !path.contains('/'),
                foreign: region != self.0.region || account != self.0.account,
                selector: sel.map(|s| selector(s, input)).transpose()?,
                selector_text: sel.map(str::to_string),
                arn: format!("arn:{partition}:ssm:{region}:{account}:parameter/{path}"),
                name,
            });
        }
        let (name, sel) = match input.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (input, None),
        };
        Ok(Reference {
            name: name.to_string(),
            bare_from_arn: false,
            foreign: false,
            selector: sel.map(|s| selector(s, input)).transpose()?,
            selector_text: sel.map(str::to_string),
            arn: self.parameter_arn(name),
        })
    }

    /// The ARN to authorize a request that names `input` on, when it does not parse.
    fn arn_for(&self, input: &str) -> String {
        match self.reference(input) {
            Ok(r) => r.arn,
            Err(_) => self.parameter_arn(input.trim_matches(' ')),
        }
    }

    /// Checks a name PutParameter creates, as AWS does.
    fn check_name(&self, name: &str) -> Result<(), ServiceError> {
        let len = name.chars().count();
        if len == 0 {
            return Err(validation("1 validation error detected: Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1."));
        }
        if len > 2048 {
            return Err(validation("1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 2048."));
        }
        if name.starts_with("arn:") {
            return Err(validation(
                "You can't enter the Amazon Resource Name (ARN) for a parameter, only the parameter name itself.",
            ));
        }
        if !name.chars().all(name_char) {
            return Err(validation(NAME_RULES));
        }
        if name.contains('/') && !name.starts_with('/') {
            return Err(validation("Parameter name must be a fully qualified name."));
        }
        let levels: Vec<&str> = name.trim_start_matches('/').split('/').collect();
        if name.starts_with("//") || levels.iter().any(|l| l.is_empty()) {
            return Err(validation(NAME_RULES));
        }
        if levels.len() > MAX_LEVELS {
            return Err(ServiceError::new(
                "HierarchyLevelLimitExceededException",
                400,
                "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the Amazon Web Services Systems Manager User Guide.",
            ));
        }
        if levels.first().is_some_and(|l| reserved(l)) {
            return Err(validation(if name.starts_with('/') {
                NAME_RULES
            } else {
                "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."
            }));
        }
        let arn = self.parameter_arn(name).len();
        if arn > MAX_ARN {
            return Err(validation(format!(
                "The parameter name is too long: with the ARN before it (arn:aws:ssm:<region>:<account>:parameter/) it may have at most {MAX_ARN} characters; it has {arn}."
            )));
        }
        Ok(())
    }

    /// The parameter a reference names, if it is here.
    fn find<'r>(
        &self,
        rows: &'r BTreeMap<String, ParameterRecord>,
        r: &Reference,
    ) -> Option<&'r ParameterRecord> {
        if r.foreign {
            return None;
        }
        rows.get(&r.name).or_else(|| {
            if r.bare_from_arn {
                rows.get(&format!("/{}", r.name))
            } else {
                None
            }
        })
    }

    /// The parameter's tags as a [`TagSource`] sees them, now.
    fn tag_source(&self) -> ParameterTags<'_> {
        ParameterTags {
            params: *self,
            rows: self.0.parameters.snapshot(),
        }
    }

    /// A version as GetParameter answers it: SecureString opened only with `decrypt`
    /// (otherwise its sealed form, as AWS answers KMS ciphertext).
    fn parameter_out(
        &self,
        rec: &ParameterRecord,
        v: &ParameterVersion,
        selector: Option<&str>,
        decrypt: bool,
    ) -> Result<Parameter, ServiceError> {
        Ok(Parameter {
            name: Some(rec.name.clone()),
            r#type: Some(v.kind),
            value: Some(self.shown_value(rec, v, decrypt)?),
            version: Some(v.version),
            selector: selector.map(|s| format!(":{s}")),
            source_result: None,
            last_modified_date: Some(v.modified),
            arn: Some(self.parameter_arn(&rec.name)),
            data_type: Some(v.data_type.clone()),
        })
    }

    fn shown_value(
        &self,
        rec: &ParameterRecord,
        v: &ParameterVersion,
        decrypt: bool,
    ) -> Result<String, ServiceError> {
        if v.kind == ParameterType::SecureString && !decrypt {
            Ok(v.sealed.clone())
        } else {
            self.open_value(&rec.name, v)
        }
    }

    /// The latest version as DescribeParameters answers it.
    fn metadata_out(&self, rec: &ParameterRecord, v: &ParameterVersion) -> ParameterMetadata {
        ParameterMetadata {
            name: Some(rec.name.clone()),
            arn: Some(self.parameter_arn(&rec.name)),
            r#type: Some(v.kind),
            key_id: v.key_id.clone(),
            last_modified_date: Some(v.modified),
            last_modified_user: Some(v.modified_by.clone()),
            description: v.description.clone(),
            allowed_pattern: v.allowed_pattern.clone(),
            version: Some(v.version),
            tier: Some(ParameterTier::Standard),
            policies: Some(Vec::new()),
            data_type: Some(v.data_type.clone()),
        }
    }

    fn history_out(
        &self,
        rec: &ParameterRecord,
        v: &ParameterVersion,
        decrypt: bool,
    ) -> Result<ParameterHistory, ServiceError> {
        Ok(ParameterHistory {
            name: Some(rec.name.clone()),
            r#type: Some(v.kind),
            key_id: v.key_id.clone(),
            last_modified_date: Some(v.modified),
            last_modified_user: Some(v.modified_by.clone()),
            description: v.description.clone(),
            value: Some(self.shown_value(rec, v, decrypt)?),
            allowed_pattern: v.allowed_pattern.clone(),
            version: Some(v.version),
            labels: Some(v.labels.clone()),
            tier: Some(ParameterTier::Standard),
            policies: Some(Vec::new()),
            data_type: Some(v.data_type.clone()),
        })
    }
}

/// The version a reference selects: the latest, a version, or the one with a label.
fn pick<'r>(rec: &'r ParameterRecord, r: &Reference) -> Result<&'r ParameterVersion, ServiceError> {
    match &r.selector {
        None => rec.latest().ok_or_else(|| not_found(&rec.name)),
        Some(Selector::Version(n)) => rec
            .versions
            .iter()
            .find(|v| v.version == *n)
            .ok_or_else(|| version_not_found(&rec.name, n)),
        Some(Selector::Label(l)) => rec
            .versions
            .iter()
            .find(|v| v.labels.iter().any(|x| x == l))
            .ok_or_else(|| not_found(&format!("{}:{l}", rec.name))),
    }
}

/// The parameters' tags, for `aws:ResourceTag/<key>` conditions.
struct ParameterTags<'a> {
    params: Params<'a>,
    rows: Arc<BTreeMap<String, ParameterRecord>>,
}

impl TagSource for ParameterTags<'_> {
    fn tags_of(&self, arn: &str) -> Vec<(String, String)> {
        let Ok(r) = self.params.reference(arn) else {
            return Vec::new();
        };
        self.params
            .find(&self.rows, &r)
            .map(|rec| {
                rec.tags
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A page token: the name (or version) a page ended after.
fn token_of(last: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("after:{last}"))
}

/// Where a page starts: after the token's name.
fn after(token: Option<&str>) -> Result<Option<String>, ServiceError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("after:").map(str::to_string))
        .map(Some)
        .ok_or_else(|| {
            ServiceError::new("InvalidNextToken", 400, "The specified token isn't valid.")
        })
}

/// `MaxResults` within `1..=max`, `default` when absent.
fn page_size(n: Option<i32>, default: usize, max: usize) -> Result<usize, ServiceError> {
    match n {
        None => Ok(default),
        Some(n) if n < 1 => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1."
        ))),
        Some(n) if n as usize > max => Err(validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {max}."
        ))),
        Some(n) => Ok(n as usize),
    }
}

struct Ssm(Arc<Secrets>);

impl Dispatch for Ssm {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let body = crate::body(&call)?;
            ops::route(Params(&self.0), call.operation, body, &call.gate).await
        })
    }
}

/// SSM's entry: `AmazonSSM`, AWS JSON 1.1, signed for `ssm`, in the server's region.
pub fn entry(secrets: &Arc<Secrets>) -> ServiceEntry {
    ServiceEntry::json_1_1(
        "ssm",
        gantry_api::ssm::TARGET_PREFIX,
        secrets.region(),
        Arc::new(Ssm(secrets.clone())),
    )
}
