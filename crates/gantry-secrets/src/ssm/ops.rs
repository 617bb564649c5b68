//! The operations: each decodes its input, authorizes `ssm:<Operation>` at the gate, then
//! validates and acts.

use super::filters::{filter_key, parse_filters, rooted, Filter, On};
use super::pattern::Pattern;
use super::tags::{add_tags, list_tags, remove_tags};
use super::*;
use gantry_api::ssm::{
    DeleteParameterRequest, DeleteParameterResult, DeleteParametersRequest, DeleteParametersResult,
    DescribeParametersRequest, DescribeParametersResult, GetParameterHistoryRequest,
    GetParameterHistoryResult, GetParameterRequest, GetParameterResult, GetParametersByPathRequest,
    GetParametersByPathResult, GetParametersRequest, GetParametersResult,
    LabelParameterVersionRequest, LabelParameterVersionResult, ParametersFilterKey,
    PutParameterRequest, PutParameterResult, Tag, UnlabelParameterVersionRequest,
    UnlabelParameterVersionResult,
};
use gantry_core::{Ask, Gate};

const INVALID: &str = "ValidationException";

/// The one table of SSM's operations.
pub(super) async fn route(
    s: Params<'_>,
    op: &str,
    body: &[u8],
    gate: &Gate<'_>,
) -> Result<Vec<u8>, ServiceError> {
    use crate::{decode, encode};
    match op {
        "PutParameter" => encode(&put(s, gate, decode_put(body)?).await?),
        "GetParameter" => encode(&get(s, gate, decode(body, INVALID)?)?),
        "GetParameters" => encode(&get_many(s, gate, decode(body, INVALID)?)?),
        "GetParametersByPath" => encode(&by_path(s, gate, decode(body, INVALID)?)?),
        "DeleteParameter" => encode(&delete(s, gate, decode(body, INVALID)?).await?),
        "DeleteParameters" => encode(&delete_many(s, gate, decode(body, INVALID)?).await?),
        "DescribeParameters" => encode(&describe(s, gate, decode(body, INVALID)?)?),
        "GetParameterHistory" => encode(&history(s, gate, decode(body, INVALID)?)?),
        "LabelParameterVersion" => encode(&label(s, gate, decode(body, INVALID)?).await?),
        "UnlabelParameterVersion" => encode(&unlabel(s, gate, decode(body, INVALID)?).await?),
        "AddTagsToResource" => encode(&add_tags(s, gate, decode(body, INVALID)?).await?),
        "RemoveTagsFromResource" => encode(&remove_tags(s, gate, decode(body, INVALID)?).await?),
        "ListTagsForResource" => encode(&list_tags(s, gate, decode(body, INVALID)?)?),
        other => Err(match gantry_api::ssm::Operation::from_name(other) {
            Some(_) => ServiceError::new(
                "UnsupportedOperationException",
                400,
                format!("gantry serves SSM's Parameter Store only; {other} is not served."),
            ),
            None => ServiceError::unknown_operation(gantry_api::ssm::TARGET_PREFIX, other),
        }),
    }
}

/// PutParameter's input; a mistyped `Value` is refused without the value in the message.
fn decode_put(body: &[u8]) -> Result<PutParameterRequest, ServiceError> {
    crate::decode(body, INVALID).map_err(|mut e| {
        let about_value = e.message.contains("at 'Value'");
        if about_value && !e.message.starts_with("Missing required") {
            e.message = "The member 'Value' must be a string.".into();
        }
        e
    })
}

pub(super) fn authorize(
    s: Params<'_>,
    gate: &Gate<'_>,
    action: &str,
    ask: Ask,
) -> Result<String, ServiceError> {
    let caller = gate.authorize_ask(action, &ask, &s.tag_source())?;
    Ok(caller.principal().arn.clone())
}

// ---- checks ----

fn check_value(value: &str) -> Result<(), ServiceError> {
    if value.is_empty() {
        return Err(validation("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1."));
    }
    if value.chars().count() > MAX_VALUE {
        return Err(validation(format!(
            "Standard tier parameters support a maximum parameter value of {MAX_VALUE} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier (gantry serves the Standard tier only)."
        )));
    }
    if let Some(open) = value.find("{{") {
        if value[open + 2..].contains("}}") {
            return Err(validation(
                "Parameter value can't nest another parameter. Do not use \"{{}}\" in the value.",
            ));
        }
    }
    Ok(())
}

fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
}

pub(super) fn check_tags(tags: &[Tag]) -> Result<(), ServiceError> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in tags.iter().enumerate() {
        let n = i + 1;
        let klen = t.key.chars().count();
        if klen == 0 || klen > 128 {
            return Err(validation(format!(
                "1 validation error detected: Value at 'tags.{n}.member.key' failed to satisfy constraint: Member must have length between 1 and 128."
            )));
        }
        if t.value.chars().count() > 256 {
            return Err(validation(format!(
                "1 validation error detected: Value at 'tags.{n}.member.value' failed to satisfy constraint: Member must have length less than or equal to 256."
            )));
        }
        if !t.key.chars().all(tag_char) || !t.value.chars().all(tag_char) {
            return Err(validation(format!(
                "1 validation error detected: Value at 'tags.{n}.member' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)$"
            )));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(validation(format!(
                "Tag keys beginning with aws: are reserved for AWS: {}.",
                t.key
            )));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(validation(format!(
                "The tag key {} appears more than once in the request.",
                t.key
            )));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    Ok(())
}

pub(super) fn too_many_tags() -> ServiceError {
    ServiceError::new(
        "TooManyTagsError",
        400,
        format!("A parameter can have at most {MAX_TAGS} tags."),
    )
}

/// Whether a label may be attached (the rest go into InvalidLabels, as AWS answers them).
fn label_ok(l: &str) -> bool {
    let lower = l.to_ascii_lowercase();
    !l.is_empty()
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !l.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

fn check_labels(labels: &[String]) -> Result<(), ServiceError> {
    if labels.is_empty() {
        return Err(validation("1 validation error detected: Value '[]' at 'labels' failed to satisfy constraint: Member must have length greater than or equal to 1."));
    }
    if labels.len() > MAX_LABELS {
        return Err(validation(format!(
            "1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length less than or equal to {MAX_LABELS}."
        )));
    }
    if let Some(l) = labels.iter().find(|l| l.chars().count() > 100) {
        return Err(validation(format!(
            "1 validation error detected: Value '[{l}]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 100, Member must have length greater than or equal to 1]"
        )));
    }
    Ok(())
}

fn check_names(names: &[String]) -> Result<Vec<String>, ServiceError> {
    if names.is_empty() {
        return Err(validation("1 validation error detected: Value '[]' at 'names' failed to satisfy constraint: Member must have length greater than or equal to 1."));
    }
    if names.len() > 10 {
        return Err(validation(format!(
            "1 validation error detected: Value '[{}]' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10.",
            names.join(", ")
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = n.trim_matches(' ').to_string();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Checks a path GetParametersByPath or a Path filter names.
pub(super) fn check_path(path: &str) -> Result<(), ServiceError> {
    if !path.starts_with('/') || !path.chars().all(name_char) {
        return Err(validation(PATH_RULES));
    }
    let inner = path.trim_start_matches('/').trim_end_matches('/');
    if path != "/" && (path.starts_with("//") || inner.split('/').any(str::is_empty)) {
        return Err(validation(PATH_RULES));
    }
    if inner.split('/').count() > MAX_LEVELS {
        return Err(validation(format!(
            "A path can have at most {MAX_LEVELS} levels."
        )));
    }
    Ok(())
}

/// A request's `ParameterVersion`-less reference to a whole parameter.
fn whole(s: Params<'_>, name: &str) -> Result<Reference, ServiceError> {
    let r = s.reference(name)?;
    if r.selector.is_some() {
        return Err(validation(format!(
            "{} names a version; this operation takes the parameter's name alone.",
            r.shown()
        )));
    }
    Ok(r)
}

// ---- PutParameter ----

const DATA_TYPES: &[&str] = &[
    "aws:ec2:image",
    "aws:ssm:integration",
    "aws:region",
    "aws:account:id",
    "boolean",
    "integer",
    "float",
    "binary",
    "hostname",
    "email",
    "ipv4-address",
    "ipv6-address",
    "url",
    "json",
    "jsonc",
];

/// What a write does to a member the previous version had: keep it, or set (`None` clears).
fn choose(given: Option<&str>, previous: Option<&String>) -> Option<String> {
    match given {
        None => previous.cloned(),
        Some("") => None,
        Some(v) => Some(v.to_string()),
    }
}

async fn put(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: PutParameterRequest,
) -> Result<PutParameterResult, ServiceError> {
    let name = r.name.trim_matches(' ').to_string();
    let tags = r.tags.clone().unwrap_or_default();
    let ask = Ask::on(vec![s.parameter_arn(&name)])
        .request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    let who = authorize(s, gate, "ssm:PutParameter", ask)?;
    s.check_name(&name)?;
    let overwrite = r.overwrite.unwrap_or(false);
    if overwrite && !tags.is_empty() {
        return Err(validation("Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource."));
    }
    check_tags(&tags)?;
    check_value(&r.value)?;
    if r.description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 1024)
    {
        return Err(validation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1024."));
    }
    if r.tier == Some(ParameterTier::Advanced) {
        return Err(validation("gantry serves the Standard tier only: Advanced parameters (values up to 8 KB, parameter policies) are not served."));
    }
    if r.policies.as_ref().is_some_and(|p| !p.trim().is_empty()) {
        return Err(validation(
            "Parameter policies need the Advanced tier, which gantry does not serve.",
        ));
    }
    let data_type = match r.data_type.as_deref() {
        None => None,
        Some("") | Some("text") => Some("text".to_string()),
        Some(dt) if DATA_TYPES.contains(&dt) => {
            return Err(validation(format!(
                "gantry serves the data type text only; {dt} is not served."
            )))
        }
        Some(dt) => {
            return Err(validation(format!(
            "The following data type is not supported: {dt} (Data type names are all lowercase.)"
        )))
        }
    };
    if let Some(k) = &r.key_id {
        let ok = !k.is_empty()
            && k.len() <= 256
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-'));
        if !ok {
            return Err(validation("1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-zA-Z0-9:/_-]+)$"));
        }
    }
    if let Some(p) = r.allowed_pattern.as_deref() {
        if p.chars().count() > 1024 {
            return Err(validation("1 validation error detected: Value at 'allowedPattern' failed to satisfy constraint: Member must have length less than or equal to 1024."));
        }
        if !p.is_empty() {
            Pattern::new(p).map_err(|e| {
                ServiceError::new(
                    "InvalidAllowedPatternException",
                    400,
                    format!(
                        "The request doesn't meet the regular expression requirement: {}.",
                        e.0
                    ),
                )
            })?;
        }
    }
    let now = crate::now();
    let version = s
        .0

        .parameters
        .update(|rows| {
            let existing = rows.get(&name).cloned();
            let prev = existing.as_ref().and_then(|e| e.latest());
            if existing.is_some() && !overwrite {
                return Err(ServiceError::new(
                    "ParameterAlreadyExists",
                    400,
                    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                ));
            }
            let kind = r.r#type.or(prev.map(|p| p.kind)).ok_or_else(|| {
                validation("A parameter type is required when you create a parameter.")
            })?;
            let key_id = if kind == ParameterType::SecureString {
                r.key_id
                    .clone()
                    .or_else(|| {
                        prev.filter(|p| p.kind == ParameterType::SecureString)
                            .and_then(|p| p.key_id.clone())
                    })
                    .or_else(|| Some("alias/aws/ssm".to_string()))
            } else if r.key_id.is_some() {
                return Err(validation(
                    "KeyId applies to SecureString parameters only.",
                ));
            } else {
                None
            };
            let allowed_pattern = choose(
                r.allowed_pattern.as_deref(),
                prev.and_then(|p| p.allowed_pattern.as_ref()),
            );
            if let Some(p) = &allowed_pattern {
                let compiled = Pattern::new(p).map_err(|e| {
                    ServiceError::new(
                        "InvalidAllowedPatternException",
                        400,
                        format!(
                            "The request doesn't meet the regular expression requirement: {}.",
                            e.0
                        ),
                    )
                })?;
                if !compiled.is_match(&r.value) {
                    return Err(ServiceError::new(
                        "ParameterPatternMismatchException",
                        400,
                        format!("Parameter value, cannot be validated against allowedPattern: {p}"),
                    ));
                }
            }
            let description = choose(
                r.description.as_deref(),
                prev.and_then(|p| p.description.as_ref()),
            );
            let data_type = data_type
                .clone()
                .or_else(|| prev.map(|p| p.data_type.clone()))
                .unwrap_or_else(|| "text".to_string());
            let version = prev.map_or(1, |p| p.version + 1);
            let mut rec = existing.clone().unwrap_or_else(|| ParameterRecord {
                name: name.clone(),
                tags: tags
                    .iter()
                    .map(|t| (t.key.clone(), t.value.clone()))
                    .collect(),
                versions: Vec::new(),
            });
            if rec.versions.len() >= MAX_VERSIONS {
                if let Some(oldest) = rec.versions.first().filter(|v| !v.labels.is_empty()) {
                    return Err(ServiceError::new(
                        "ParameterMaxVersionLimitExceeded",
                        400,
                        format!(
                            "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
                            oldest.version
                        ),
                    ));
                }
                rec.versions.remove(0);
            }
            rec.versions.push(ParameterVersion {
                version,
                kind,
                sealed: s.seal_value(&name, version, &r.value),
                description,
                allowed_pattern,
                key_id,
                data_type,
                labels: Vec::new(),
                modified: now,
                modified_by: who.clone(),
            });
            rows.put(&name, rec);
            Ok(version)
        })
        .await?;
    Ok(PutParameterResult {
        version: Some(version),
        tier: Some(ParameterTier::Standard),
    })
}

// ---- reads ----

fn get(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: GetParameterRequest,
) -> Result<GetParameterResult, ServiceError> {
    authorize(
        s,
        gate,
        "ssm:GetParameter",
        Ask::on(vec![s.arn_for(&r.name)]),
    )?;
    let rf = s.reference(&r.name)?;
    let rows = s.0.parameters.snapshot();
    let rec = s.find(&rows, &rf).ok_or_else(|| not_found(&rf.shown()))?;
    let v = pick(rec, &rf)?;
    Ok(GetParameterResult {
        parameter: Some(s.parameter_out(
            rec,
            v,
            rf.selector_text.as_deref(),
            r.with_decryption.unwrap_or(false),
        )?),
    })
}

fn get_many(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: GetParametersRequest,
) -> Result<GetParametersResult, ServiceError> {
    let names = check_names(&r.names)?;
    let arns = names.iter().map(|n| s.arn_for(n)).collect();
    authorize(s, gate, "ssm:GetParameters", Ask::on(arns))?;
    let rows = s.0.parameters.snapshot();
    let decrypt = r.with_decryption.unwrap_or(false);
    let (mut found, mut invalid) = (Vec::new(), Vec::new());
    for n in names {
        let Ok(rf) = s.reference(&n) else {
            invalid.push(n);
            continue;
        };
        let Some(rec) = s.find(&rows, &rf) else {
            invalid.push(n);
            continue;
        };
        match pick(rec, &rf) {
            Ok(v) => found.push(s.parameter_out(rec, v, rf.selector_text.as_deref(), decrypt)?),
            Err(_) => invalid.push(n),
        }
    }
    Ok(GetParametersResult {
        parameters: Some(found),
        invalid_parameters: Some(invalid),
    })
}

fn by_path(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: GetParametersByPathRequest,
) -> Result<GetParametersByPathResult, ServiceError> {
    let path = r.path.trim_matches(' ');
    let bare = if path == "/" {
        ""
    } else {
        path.trim_end_matches('/')
    };
    authorize(
        s,
        gate,
        "ssm:GetParametersByPath",
        Ask::on(vec![s.parameter_arn(bare)]),
    )?;
    check_path(path)?;
    let filters = parse_filters(r.parameter_filters.as_deref().unwrap_or_default(), true)?;
    let max = page_size(r.max_results, 10, 10)?;
    let start = after(r.next_token.as_deref())?;
    let recursive = r.recursive.unwrap_or(false);
    let decrypt = r.with_decryption.unwrap_or(false);
    let label = filters.iter().find(|f| f.key == On::Label);
    let rows = s.0.parameters.snapshot();
    let (mut page, mut next) = (Vec::new(), None);
    for (name, rec) in rows.iter() {
        if start.as_ref().is_some_and(|a| name.as_str() <= a.as_str()) {
            continue;
        }
        let full = rooted(name);
        let below = if bare.is_empty() {
            Some(&full[1..])
        } else {
            full.strip_prefix(bare).and_then(|r| r.strip_prefix('/'))
        };
        let Some(below) = below else { continue };
        if below.is_empty() || (!recursive && below.contains('/')) {
            continue;
        }
        let version = match label {
            Some(f) => rec.versions.iter().rev().find(|v| f.matches(rec, v)),
            None => rec.latest(),
        };
        let Some(v) = version else { continue };
        if !filters
            .iter()
            .all(|f| f.key == On::Label || f.matches(rec, v))
        {
            continue;
        }
        if page.len() == max {
            next = page
                .last()
                .and_then(|p: &Parameter| p.name.as_deref())
                .map(token_of);
            break;
        }
        page.push(s.parameter_out(rec, v, None, decrypt)?);
    }
    Ok(GetParametersByPathResult {
        parameters: Some(page),
        next_token: next,
    })
}

fn describe(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: DescribeParametersRequest,
) -> Result<DescribeParametersResult, ServiceError> {
    authorize(s, gate, "ssm:DescribeParameters", Ask::on(vec!["*".into()]))?;
    let old = r.filters.clone().unwrap_or_default();
    let new = r.parameter_filters.clone().unwrap_or_default();
    if !old.is_empty() && !new.is_empty() {
        return Err(validation(
            "You can use either Filters or ParameterFilters in a single request.",
        ));
    }
    let mut filters = parse_filters(&new, false)?;
    for f in old {
        if f.values.is_empty() {
            return Err(filter_key(
                "InvalidFilterValue",
                format!(
                    "The following filter values are missing : null for filter key {:?}.",
                    f.key
                ),
            ));
        }
        let (key, option) = match f.key {
            ParametersFilterKey::Name => (On::Name, "BeginsWith"),
            ParametersFilterKey::Type => (On::Type, "Equals"),
            ParametersFilterKey::KeyId => (On::KeyId, "Equals"),
        };
        filters.push(Filter {
            key,
            option: option.into(),
            values: f.values,
        });
    }
    let max = page_size(r.max_results, 10, 50)?;
    let start = after(r.next_token.as_deref())?;
    if r.shared == Some(true) {
        // Nothing is shared with this account: there are no other accounts.
        return Ok(DescribeParametersResult {
            parameters: Some(Vec::new()),
            next_token: None,
        });
    }
    let rows = s.0.parameters.snapshot();
    let (mut page, mut next) = (Vec::new(), None);
    for (name, rec) in rows.iter() {
        if start.as_ref().is_some_and(|a| name.as_str() <= a.as_str()) {
            continue;
        }
        let Some(v) = rec.latest() else { continue };
        if !filters.iter().all(|f| f.matches(rec, v)) {
            continue;
        }
        if page.len() == max {
            next = page
                .last()
                .and_then(|p: &ParameterMetadata| p.name.as_deref())
                .map(token_of);
            break;
        }
        page.push(s.metadata_out(rec, v));
    }
    Ok(DescribeParametersResult {
        parameters: Some(page),
        next_token: next,
    })
}

fn history(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: GetParameterHistoryRequest,
) -> Result<GetParameterHistoryResult, ServiceError> {
    authorize(
        s,
        gate,
        "ssm:GetParameterHistory",
        Ask::on(vec![s.arn_for(&r.name)]),
    )?;
    let rf = whole(s, &r.name)?;
    let max = page_size(r.max_results, 50, 50)?;
    let start = match after(r.next_token.as_deref())? {
        None => None,
        Some(t) => Some(t.parse::<i64>().map_err(|_| {
            ServiceError::new("InvalidNextToken", 400, "The specified token isn't valid.")
        })?),
    };
    let rows = s.0.parameters.snapshot();
    let rec = s.find(&rows, &rf).ok_or_else(|| not_found(&rf.name))?;
    let decrypt = r.with_decryption.unwrap_or(false);
    let mut rest = rec
        .versions
        .iter()
        .filter(|v| start.is_none_or(|a| v.version > a));
    let mut page = Vec::new();
    for v in rest.by_ref().take(max) {
        page.push(s.history_out(rec, v, decrypt)?);
    }
    let next = match (rest.next(), page.last()) {
        (Some(_), Some(last)) => last.version.map(|n| token_of(&n.to_string())),
        _ => None,
    };
    Ok(GetParameterHistoryResult {
        parameters: Some(page),
        next_token: next,
    })
}

// ---- writes ----

async fn delete(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: DeleteParameterRequest,
) -> Result<DeleteParameterResult, ServiceError> {
    authorize(
        s,
        gate,
        "ssm:DeleteParameter",
        Ask::on(vec![s.arn_for(&r.name)]),
    )?;
    let rf = whole(s, &r.name)?;
    s.0.parameters
        .update(|rows| {
            let key = s
                .find(rows.all(), &rf)
                .map(|rec| rec.name.clone())
                .ok_or_else(|| not_found(&rf.name))?;
            rows.delete(&key);
            Ok(())
        })
        .await?;
    Ok(DeleteParameterResult {})
}

async fn delete_many(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: DeleteParametersRequest,
) -> Result<DeleteParametersResult, ServiceError> {
    let names = check_names(&r.names)?;
    let arns = names.iter().map(|n| s.arn_for(n)).collect();
    authorize(s, gate, "ssm:DeleteParameters", Ask::on(arns))?;
    let (deleted, invalid) =
        s.0.parameters
            .update(|rows| {
                let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
                for n in names {
                    let key = whole(s, &n)
                        .ok()
                        .and_then(|rf| s.find(rows.all(), &rf).map(|rec| rec.name.clone()));
                    match key {
                        Some(k) => {
                            rows.delete(&k);
                            deleted.push(n);
                        }
                        None => invalid.push(n),
                    }
                }
                Ok((deleted, invalid))
            })
            .await?;
    Ok(DeleteParametersResult {
        deleted_parameters: Some(deleted),
        invalid_parameters: Some(invalid),
    })
}

async fn label(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: LabelParameterVersionRequest,
) -> Result<LabelParameterVersionResult, ServiceError> {
    authorize(
        s,
        gate,
        "ssm:LabelParameterVersion",
        Ask::on(vec![s.arn_for(&r.name)]),
    )?;
    let rf = whole(s, &r.name)?;
    check_labels(&r.labels)?;
    let (good, bad): (Vec<String>, Vec<String>) =
        r.labels.iter().cloned().partition(|l| label_ok(l));
    let version = s
        .0

        .parameters
        .update(|rows| {
            let mut rec = s
                .find(rows.all(), &rf)
                .cloned()
                .ok_or_else(|| not_found(&rf.name))?;
            let version = match r.parameter_version {
                Some(n) => n,
                None => rec.latest().map_or(0, |v| v.version),
            };
            let Some(at) = rec.versions.iter().position(|v| v.version == version) else {
                return Err(version_not_found(&rec.name, version));
            };
            if good.is_empty() {
                return Ok(version);
            }
            for (i, v) in rec.versions.iter_mut().enumerate() {
                if i != at {
                    v.labels.retain(|l| !good.contains(l));
                }
            }
            let target = &mut rec.versions[at];
            for l in &good {
                if !target.labels.contains(l) {
                    target.labels.push(l.clone());
                }
            }
            if target.labels.len() > MAX_LABELS {
                return Err(ServiceError::new(
                    "ParameterVersionLabelLimitExceeded",
                    400,
                    "A parameter version can have maximum 10 labels. Move one or more labels to another version and try again.",
                ));
            }
            let key = rec.name.clone();
            rows.put(&key, rec);
            Ok(version)
        })
        .await?;
    Ok(LabelParameterVersionResult {
        invalid_labels: Some(bad),
        parameter_version: Some(version),
    })
}

async fn unlabel(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: UnlabelParameterVersionRequest,
) -> Result<UnlabelParameterVersionResult, ServiceError> {
    authorize(
        s,
        gate,
        "ssm:UnlabelParameterVersion",
        Ask::on(vec![s.arn_for(&r.name)]),
    )?;
    let rf = whole(s, &r.name)?;
    check_labels(&r.labels)?;
    let (removed, invalid) =
        s.0.parameters
            .update(|rows| {
                let mut rec = s
                    .find(rows.all(), &rf)
                    .cloned()
                    .ok_or_else(|| not_found(&rf.name))?;
                let Some(v) = rec
                    .versions
                    .iter_mut()
                    .find(|v| v.version == r.parameter_version)
                else {
                    return Err(version_not_found(&rf.name, r.parameter_version));
                };
                let (mut removed, mut invalid) = (Vec::new(), Vec::new());
                for l in &r.labels {
                    if let Some(i) = v.labels.iter().position(|x| x == l) {
                        v.labels.remove(i);
                        removed.push(l.clone());
                    } else if !removed.contains(l) {
                        invalid.push(l.clone());
                    }
                }
                if !removed.is_empty() {
                    let key = rec.name.clone();
                    rows.put(&key, rec);
                }
                Ok((removed, invalid))
            })
            .await?;
    Ok(UnlabelParameterVersionResult {
        removed_labels: Some(removed),
        invalid_labels: Some(invalid),
    })
}
