//! `ParameterFilters` (and DescribeParameters' older `Filters`): checked as SSM checks them
//! and matched against a parameter's version.

use super::ops::check_path;
use super::*;
use gantry_api::ssm::ParameterStringFilter;

/// A `ParameterStringFilter`'s key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum On {
    Name,
    Type,
    KeyId,
    Path,
    Label,
    Tier,
    DataType,
    Tag(String),
}

#[derive(Debug, Clone)]
pub(super) struct Filter {
    pub(super) key: On,
    pub(super) option: String,
    pub(super) values: Vec<String>,
}

pub(super) fn filter_key(code: &'static str, message: String) -> ServiceError {
    ServiceError::new(code, 400, message)
}

/// Checks `ParameterFilters` as DescribeParameters (`by_path` false) or GetParametersByPath
/// takes them.
pub(super) fn parse_filters(
    list: &[ParameterStringFilter],
    by_path: bool,
) -> Result<Vec<Filter>, ServiceError> {
    let mut out: Vec<Filter> = Vec::new();
    for (i, f) in list.iter().enumerate() {
        let key = match f.key.as_str() {
            "Name" => On::Name,
            "Type" => On::Type,
            "KeyId" => On::KeyId,
            "Path" => On::Path,
            "Label" => On::Label,
            "Tier" => On::Tier,
            "DataType" => On::DataType,
            k if k.len() > 4 && k.starts_with("tag:") && k.len() <= 132 => {
                On::Tag(k[4..].to_string())
            }
            k => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{k}' at 'parameterFilters.{}.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType",
                    i + 1
                )))
            }
        };
        let name = f.key.as_str();
        if by_path && !matches!(key, On::Type | On::KeyId | On::Label) {
            return Err(filter_key(
                "InvalidFilterKey",
                format!("The following filter key is not valid: {name}. Valid filter keys include: [Type, KeyId, Label]."),
            ));
        }
        if !by_path && key == On::Label {
            return Err(filter_key(
                "InvalidFilterKey",
                "The following filter key is not valid: Label. Valid filter keys include: [Path, Name, Type, KeyId, Tier, DataType, tag:<key>].".into(),
            ));
        }
        if out.iter().any(|o| o.key == key) {
            return Err(filter_key(
                "InvalidFilterKey",
                format!("The following filter is duplicated in the request: {name}. A request can contain only one occurrence of a specific filter."),
            ));
        }
        let values = f.values.clone().unwrap_or_default();
        if values.is_empty() {
            return Err(filter_key(
                "InvalidFilterValue",
                format!("The following filter values are missing : null for filter key {name}."),
            ));
        }
        let (default, allowed): (&str, &[&str]) = match key {
            On::Path => ("OneLevel", &["Recursive", "OneLevel"]),
            On::Name => ("Equals", &["BeginsWith", "Contains", "Equals"]),
            On::Label => ("Equals", &["Equals"]),
            _ => ("Equals", &["BeginsWith", "Equals"]),
        };
        let option = f.option.clone().unwrap_or_else(|| default.to_string());
        if !allowed.contains(&option.as_str()) {
            return Err(filter_key(
                "InvalidFilterOption",
                format!(
                    "The following filter option is not valid: {option}. Valid options include: [{}].",
                    allowed.join(", ")
                ),
            ));
        }
        let valid: &[&str] = match key {
            On::Type => &["String", "StringList", "SecureString"],
            On::Tier => &["Standard", "Advanced", "Intelligent-Tiering"],
            _ => &[],
        };
        if !valid.is_empty() && option == "Equals" {
            if let Some(v) = values.iter().find(|v| !valid.contains(&v.as_str())) {
                return Err(filter_key(
                    "InvalidFilterValue",
                    format!(
                        "The following filter value is not valid: {v}. Valid values include: [{}].",
                        valid.join(", ")
                    ),
                ));
            }
        }
        if key == On::Path {
            for v in &values {
                let first = v.trim_start_matches('/').split('/').next().unwrap_or("");
                if reserved(first) {
                    return Err(validation("Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). When using global parameters, please specify within a global namespace."));
                }
                check_path(v)?;
            }
        }
        out.push(Filter {
            key,
            option,
            values,
        });
    }
    Ok(out)
}

fn test(option: &str, what: &str, values: &[String]) -> bool {
    values.iter().any(|v| match option {
        "BeginsWith" => what.starts_with(v.as_str()),
        "Contains" => what.contains(v.as_str()),
        _ => what == v,
    })
}

/// A name as path filters see it: plain names sit at the root (`foo` is `/foo`).
pub(super) fn rooted(name: &str) -> String {
    format!("/{}", name.trim_start_matches('/'))
}

impl Filter {
    pub(super) fn matches(&self, rec: &ParameterRecord, v: &ParameterVersion) -> bool {
        match &self.key {
            On::Name => {
                if self.option == "Contains" {
                    return test("Contains", &rec.name, &self.values);
                }
                let values: Vec<String> = self.values.iter().map(|v| rooted(v)).collect();
                test(&self.option, &rooted(&rec.name), &values)
            }
            On::Path => {
                let what = rooted(&rec.name);
                self.values.iter().any(|p| {
                    let p = format!("/{}", p.trim_matches('/'));
                    let parent = what.rsplit_once('/').map_or("", |(a, _)| a);
                    let parent = if parent.is_empty() { "/" } else { parent };
                    if self.option == "Recursive" {
                        p == "/" || what.starts_with(&format!("{p}/"))
                    } else {
                        parent == p
                    }
                })
            }
            On::Type => test(&self.option, v.kind.as_str(), &self.values),
            On::KeyId => v
                .key_id
                .as_deref()
                .is_some_and(|k| test(&self.option, k, &self.values)),
            On::Tier => test(&self.option, "Standard", &self.values),
            On::DataType => test(&self.option, &v.data_type, &self.values),
            On::Tag(k) => rec
                .tags
                .get(k)
                .is_some_and(|t| test(&self.option, t, &self.values)),
            On::Label => v.labels.iter().any(|l| self.values.contains(l)),
        }
    }
}
