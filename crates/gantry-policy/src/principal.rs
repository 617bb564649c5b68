//! The `Principal` / `NotPrincipal` element of trust (resource-based) policies.
//!
//! AWS semantics followed here:
//! - `"Principal": "*"` and `{"AWS": "*"}` name every caller.
//! - `{"AWS": "123456789012"}` and `{"AWS": "arn:aws:iam::123456789012:root"}`
//!   behave the same: they delegate to the account, so in `Principal` they
//!   match any AWS principal of that account.
//! - Other `AWS` values are user, role, assumed-role session or federated
//!   user ARNs, compared exactly; wildcards inside them are rejected
//!   ("You cannot use a wildcard to match part of a principal name or ARN").
//! - `Service` values name a service principal (`ecs-tasks.amazonaws.com`).
//! - `Federated` and `CanonicalUser` are accepted but never match a [`Who`].
//!
//! In `NotPrincipal` AWS checks the account, the role and the session one at
//! a time, which is why it tells authors to list the account ARN next to the
//! user or role they exempt. Accordingly a caller is exempted when one of the
//! ARNs it may be named by is listed (an account entry exempts only the
//! account's root), or its service is listed; naming the account alone does
//! not exempt all of the account's users.

use serde_json::Value;

use crate::{PolicyError, Who};

/// A compiled `Principal` or `NotPrincipal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principals {
    /// `"*"`.
    Everyone,
    /// An object of principal lists.
    Named {
        /// `AWS` entries.
        aws: Vec<AwsPrincipal>,
        /// `Service` entries.
        service: Vec<String>,
        /// Whether `Federated` / `CanonicalUser` entries exist (they never match).
        other: bool,
    },
}

/// One entry of an `AWS` principal list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AwsPrincipal {
    /// `"*"`.
    Any,
    /// An account id, given bare or as `arn:<partition>:iam::<id>:root`.
    Account(String),
    /// Any other principal ARN.
    Arn(String),
}

fn invalid(kind: &str, value: &str) -> PolicyError {
    PolicyError::new(format!(
        "Invalid principal in policy: \"{kind}\":\"{value}\""
    ))
}

fn strings<'v>(kind: &str, value: &'v Value) -> Result<Vec<&'v str>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| invalid(kind, &item.to_string()))
            })
            .collect(),
        other => Err(invalid(kind, &other.to_string())),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The account id of `arn:<partition>:iam::<id>:root`.
fn root_account(arn: &str) -> Option<&str> {
    let mut it = arn.splitn(6, ':');
    let ok = it.next() == Some("arn") && it.next().is_some_and(|p| !p.is_empty());
    let (service, region, account, resource) = (it.next(), it.next(), it.next(), it.next());
    (ok && service == Some("iam") && region == Some("") && resource == Some("root"))
        .then_some(account)
        .flatten()
        .filter(|a| is_account_id(a))
}

fn aws_principal(value: &str) -> Result<AwsPrincipal, PolicyError> {
    if value == "*" {
        return Ok(AwsPrincipal::Any);
    }
    if is_account_id(value) {
        return Ok(AwsPrincipal::Account(value.to_string()));
    }
    if let Some(account) = root_account(value) {
        return Ok(AwsPrincipal::Account(account.to_string()));
    }
    let arn_like = value.starts_with("arn:") && value.split(':').count() >= 6;
    if !arn_like || value.contains('*') || value.contains('?') {
        return Err(invalid("AWS", value));
    }
    Ok(AwsPrincipal::Arn(value.to_string()))
}

impl Principals {
    /// Compiles the JSON value of a `Principal` or `NotPrincipal` element.
    pub(crate) fn compile(value: &Value) -> Result<Principals, PolicyError> {
        let map = match value {
            Value::String(s) if s == "*" => return Ok(Principals::Everyone),
            Value::Object(map) if !map.is_empty() => map,
            other => {
                return Err(PolicyError::new(format!(
                    "Invalid principal in policy: {other}"
                )))
            }
        };
        let mut aws = Vec::new();
        let mut service = Vec::new();
        let mut other = false;
        for (kind, value) in map {
            let values = strings(kind, value)?;
            match kind.as_str() {
                "AWS" => {
                    for v in values {
                        aws.push(aws_principal(v)?);
                    }
                }
                "Service" => {
                    for v in values {
                        if v.is_empty() || v.contains(char::is_whitespace) {
                            return Err(invalid(kind, v));
                        }
                        service.push(v.to_ascii_lowercase());
                    }
                }
                "Federated" | "CanonicalUser" => {
                    if values.iter().any(|v| v.is_empty()) {
                        return Err(invalid(kind, ""));
                    }
                    other = true;
                }
                _ => return Err(invalid(kind, values.first().copied().unwrap_or(""))),
            }
        }
        Ok(Principals::Named {
            aws,
            service,
            other,
        })
    }

    /// Whether a `Principal` element names `who`.
    pub(crate) fn names(&self, who: &Who<'_>) -> bool {
        let Principals::Named { aws, service, .. } = self else {
            return true;
        };
        let by_aws = aws.iter().any(|p| match p {
            AwsPrincipal::Any => true,
            AwsPrincipal::Account(id) => {
                (!who.aws.is_empty() && who.account == id)
                    || who.aws.iter().any(|a| root_account(a) == Some(id))
            }
            AwsPrincipal::Arn(arn) => who.aws.iter().any(|a| a == arn),
        });
        by_aws || service_named(service, who)
    }

    /// Whether a `NotPrincipal` element exempts `who` (see the module docs).
    pub(crate) fn exempts(&self, who: &Who<'_>) -> bool {
        let Principals::Named { aws, service, .. } = self else {
            return true;
        };
        let by_aws = aws.iter().any(|p| match p {
            AwsPrincipal::Any => true,
            AwsPrincipal::Account(id) => who.aws.iter().any(|a| root_account(a) == Some(id)),
            AwsPrincipal::Arn(arn) => who.aws.iter().any(|a| a == arn),
        });
        by_aws || service_named(service, who)
    }
}

fn service_named(service: &[String], who: &Who<'_>) -> bool {
    match who.service {
        Some(s) => service.iter().any(|x| x.eq_ignore_ascii_case(s)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_arns() {
        assert_eq!(
            root_account("arn:aws:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            root_account("arn:aws-cn:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(root_account("arn:aws:iam::123456789012:user/root"), None);
        assert_eq!(root_account("arn:aws:iam::12345:root"), None);
        assert_eq!(root_account("arn:aws:sts::123456789012:root"), None);
        assert_eq!(root_account("arn::iam::123456789012:root"), None);
    }

    #[test]
    fn compile_values() {
        let ok = |v: &str| Principals::compile(&serde_json::from_str(v).unwrap_or(Value::Null));
        assert_eq!(ok("\"*\""), Ok(Principals::Everyone));
        assert!(ok("{\"AWS\": [\"123456789012\", \"arn:aws:iam::123456789012:role/r\"]}").is_ok());
        assert!(ok("{\"AWS\": \"arn:aws:iam::123456789012:user/*\"}").is_err());
        assert!(ok("{\"AWS\": \"bob\"}").is_err());
        assert!(ok("{\"AWS\": []}").is_err());
        assert!(ok("{\"AWS\": [1]}").is_err());
        assert!(ok("{}").is_err());
        assert!(ok("\"bob\"").is_err());
        assert!(ok("{\"Robot\": \"x\"}").is_err());
        assert!(ok("{\"Service\": \"\"}").is_err());
        assert!(ok("{\"Federated\": \"accounts.google.com\"}").is_ok());
    }
}
