//! The `Condition` element: operators, their compiled values and evaluation.
//!
//! Semantics (IAM User Guide, "Condition operators" and "Conditions with
//! multiple context keys or values"):
//! - All operators of a block AND; all keys of an operator AND; the policy
//!   values of one key OR, or NOR for negated operators (`StringNotEquals`,
//!   `StringNotEqualsIgnoreCase`, `StringNotLike`, `NumericNotEquals`,
//!   `DateNotEquals`, `NotIpAddress`, `ArnNotEquals`, `ArnNotLike`).
//! - A key missing from the request: the condition is false, except that
//!   for negated operators it is true; `...IfExists` makes it true;
//!   `ForAllValues:` makes it true, `ForAnyValue:` false; `Null` tests for
//!   exactly that. An empty list of request values counts as missing.
//! - `ForAnyValue:` holds when some request value satisfies the operator,
//!   `ForAllValues:` when every request value does. For a negated operator a
//!   request value "satisfies" it when it matches none of the policy values.
//!   Without a set operator a positive operator needs one matching request
//!   value and a negated one needs no request value to match.
//! - Policy variables are honoured in string, `Bool` and ARN operator values
//!   only (as AWS documents); an unresolvable variable makes that one policy
//!   value match nothing.
//! - A request value that cannot be parsed for a numeric, date or IP operator
//!   matches no policy value.

use std::net::IpAddr;

use serde_json::Value;

use crate::pattern::{arn_parts, ArnPat, Fold, Pat, Syntax};
use crate::{date, Facts, PolicyError};

/// One compiled `"Operator": { "key": values }` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    /// The lower-cased context key.
    key: String,
    set: SetOp,
    if_exists: bool,
    negated: bool,
    test: Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn test<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Str(Vec<Pat>),
    Num(Vec<f64>, Cmp),
    Date(Vec<i128>, Cmp),
    Binary(Vec<String>),
    Ip(Vec<Cidr>),
    Arn(Vec<ArnPat>),
    Null(Vec<bool>),
}

/// The operator families, before values are compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Str { wildcards: bool, fold: Fold },
    Num(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// Looks up a base operator name (without set prefix or `IfExists`).
fn family(base: &str) -> Option<(Family, bool)> {
    const EXACT: Family = Family::Str {
        wildcards: false,
        fold: Fold::None,
    };
    const ICASE: Family = Family::Str {
        wildcards: false,
        fold: Fold::Unicode,
    };
    const LIKE: Family = Family::Str {
        wildcards: true,
        fold: Fold::None,
    };
    let table: [(&str, Family, bool); 27] = [
        ("StringEquals", EXACT, false),
        ("StringNotEquals", EXACT, true),
        ("StringEqualsIgnoreCase", ICASE, false),
        ("StringNotEqualsIgnoreCase", ICASE, true),
        ("StringLike", LIKE, false),
        ("StringNotLike", LIKE, true),
        ("NumericEquals", Family::Num(Cmp::Eq), false),
        ("NumericNotEquals", Family::Num(Cmp::Eq), true),
        ("NumericLessThan", Family::Num(Cmp::Lt), false),
        ("NumericLessThanEquals", Family::Num(Cmp::Le), false),
        ("NumericGreaterThan", Family::Num(Cmp::Gt), false),
        ("NumericGreaterThanEquals", Family::Num(Cmp::Ge), false),
        ("DateEquals", Family::Date(Cmp::Eq), false),
        ("DateNotEquals", Family::Date(Cmp::Eq), true),
        ("DateLessThan", Family::Date(Cmp::Lt), false),
        ("DateLessThanEquals", Family::Date(Cmp::Le), false),
        ("DateGreaterThan", Family::Date(Cmp::Gt), false),
        ("DateGreaterThanEquals", Family::Date(Cmp::Ge), false),
        ("Bool", Family::Bool, false),
        ("BinaryEquals", Family::Binary, false),
        ("IpAddress", Family::Ip, false),
        ("NotIpAddress", Family::Ip, true),
        ("ArnEquals", Family::Arn, false),
        ("ArnLike", Family::Arn, false),
        ("ArnNotEquals", Family::Arn, true),
        ("ArnNotLike", Family::Arn, true),
        ("Null", Family::Null, false),
    ];
    table
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(base))
        .map(|&(_, family, negated)| (family, negated))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = text.len().checked_sub(suffix.len())?;
    let tail = text.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| text.get(..cut))
        .flatten()
}

/// Parses an operator name such as `ForAllValues:StringLikeIfExists`.
fn operator(name: &str) -> Result<(SetOp, bool, Family, bool), PolicyError> {
    let invalid = || PolicyError::new(format!("Invalid Condition type : {name}"));
    let (set, rest) = if let Some(rest) = strip_prefix_ci(name, "ForAnyValue:") {
        (SetOp::AnyValue, rest)
    } else if let Some(rest) = strip_prefix_ci(name, "ForAllValues:") {
        (SetOp::AllValues, rest)
    } else {
        (SetOp::Single, name)
    };
    if let Some((family, negated)) = family(rest) {
        return Ok((set, false, family, negated));
    }
    let base = strip_suffix_ci(rest, "IfExists").ok_or_else(invalid)?;
    match family(base) {
        Some((Family::Null, _)) | None => Err(invalid()),
        Some((family, negated)) => Ok((set, true, family, negated)),
    }
}

fn syntax_error() -> PolicyError {
    PolicyError::new("Syntax errors in policy.")
}

/// The condition values of one key, stringified.
fn values(value: &Value) -> Result<Vec<String>, PolicyError> {
    fn scalar(value: &Value) -> Result<String, PolicyError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(syntax_error()),
        }
    }
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

/// Whether a condition key is prefaced by a vendor (`aws:`, `ecs:` ...).
pub(crate) fn has_vendor(key: &str) -> bool {
    match key.split_once(':') {
        Some((vendor, name)) => !vendor.trim().is_empty() && !name.is_empty(),
        None => false,
    }
}

/// Compiles a statement's `Condition` element.
pub(crate) fn compile_block(block: &Value, variables: bool) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(operators) = block else {
        return Err(syntax_error());
    };
    let mut out = Vec::new();
    for (name, keys) in operators {
        let (set, if_exists, family, negated) = operator(name)?;
        let Value::Object(keys) = keys else {
            return Err(syntax_error());
        };
        for (key, value) in keys {
            if !has_vendor(key) {
                return Err(PolicyError::new(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                ));
            }
            let test = compile_test(name, family, &values(value)?, variables)?;
            out.push(Condition {
                key: key.to_lowercase(),
                set,
                if_exists,
                negated,
                test,
            });
        }
    }
    Ok(out)
}

fn bad_value(what: &str, op: &str, value: &str) -> PolicyError {
    PolicyError::new(format!("Invalid {what} in condition {op} : {value}"))
}

fn compile_test(
    op: &str,
    family: Family,
    values: &[String],
    variables: bool,
) -> Result<Test, PolicyError> {
    let each = |what: &str, parse: &dyn Fn(&str) -> Option<()>| -> Result<(), PolicyError> {
        match values.iter().find(|v| parse(v).is_none()) {
            Some(v) => Err(bad_value(what, op, v)),
            None => Ok(()),
        }
    };
    Ok(match family {
        Family::Str { wildcards, fold } => {
            let syntax = Syntax {
                wildcards,
                variables,
                fold,
            };
            Test::Str(values.iter().map(|v| Pat::compile(v, syntax)).collect())
        }
        Family::Bool => {
            each("boolean", &|v| {
                let literal = v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
                (literal || (variables && v.contains("${"))).then_some(())
            })?;
            let syntax = Syntax {
                wildcards: false,
                variables,
                fold: Fold::Unicode,
            };
            Test::Str(values.iter().map(|v| Pat::compile(v, syntax)).collect())
        }
        Family::Num(cmp) => {
            each("number", &|v| number(v).map(drop))?;
            Test::Num(values.iter().filter_map(|v| number(v)).collect(), cmp)
        }
        Family::Date(cmp) => {
            each("date", &|v| date::parse(v).map(drop))?;
            Test::Date(values.iter().filter_map(|v| date::parse(v)).collect(), cmp)
        }
        Family::Binary => Test::Binary(values.to_vec()),
        Family::Ip => {
            each("IP address or CIDR range", &|v| Cidr::parse(v).map(drop))?;
            Test::Ip(values.iter().filter_map(|v| Cidr::parse(v)).collect())
        }
        Family::Arn => Test::Arn(
            values
                .iter()
                .map(|v| ArnPat::compile_lenient(v, variables))
                .collect(),
        ),
        Family::Null => {
            each("boolean", &|v| null_value(v).map(drop))?;
            Test::Null(values.iter().filter_map(|v| null_value(v)).collect())
        }
    })
}

fn number(text: &str) -> Option<f64> {
    let n: f64 = text.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

fn null_value(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl Condition {
    /// Evaluates this condition against the request context.
    pub(crate) fn holds(&self, facts: &dyn Facts) -> bool {
        let request = facts.get(&self.key).filter(|v| !v.is_empty());
        if let Test::Null(expected) = &self.test {
            let present = request.is_some();
            // "true": the key is absent; "false": the key is present.
            return expected.iter().any(|&null| null != present);
        }
        let Some(request) = request else {
            return self.if_exists
                || match self.set {
                    SetOp::AllValues => true,
                    SetOp::AnyValue => false,
                    SetOp::Single => self.negated,
                };
        };
        let satisfied = |r: &String| self.matches_any(r, facts) != self.negated;
        match self.set {
            SetOp::AnyValue => request.iter().any(satisfied),
            SetOp::AllValues => request.iter().all(satisfied),
            SetOp::Single if self.negated => request.iter().all(satisfied),
            SetOp::Single => request.iter().any(satisfied),
        }
    }

    /// Whether a request value matches at least one policy value (ignoring
    /// negation).
    fn matches_any(&self, request: &str, facts: &dyn Facts) -> bool {
        match &self.test {
            Test::Str(pats) => pats.iter().any(|p| p.matches(request, facts)),
            Test::Num(values, cmp) => {
                number(request).is_some_and(|r| values.iter().any(|&v| cmp.test(r, v)))
            }
            Test::Date(values, cmp) => {
                date::parse(request).is_some_and(|r| values.iter().any(|&v| cmp.test(r, v)))
            }
            Test::Binary(values) => values.iter().any(|v| v == request),
            Test::Ip(cidrs) => request
                .trim()
                .parse::<IpAddr>()
                .is_ok_and(|ip| cidrs.iter().any(|c| c.contains(ip))),
            Test::Arn(pats) => {
                let parts = arn_parts(request);
                pats.iter()
                    .any(|p| p.matches(request, parts.as_ref(), facts))
            }
            Test::Null(_) => false,
        }
    }
}

/// An IPv4 or IPv6 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    v6: bool,
    bits: u128,
    mask: u128,
}

fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (false, u128::from(u32::from(v4))),
            None => (true, u128::from(v6)),
        },
    }
}

impl Cidr {
    /// Parses `203.0.113.0/24`, `2001:DB8::/32` or a single address.
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let (v6, bits) = ip_bits(addr.parse::<IpAddr>().ok()?);
        let width: u32 = if v6 { 128 } else { 32 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok()?
            }
            Some(_) => return None,
            None => width,
        };
        if prefix > width {
            return None;
        }
        let full = if v6 { u128::MAX } else { u128::from(u32::MAX) };
        let mask = if prefix == 0 {
            0
        } else {
            (full << (width - prefix)) & full
        };
        Some(Cidr {
            v6,
            bits: bits & mask,
            mask,
        })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = ip_bits(ip);
        v6 == self.v6 && bits & self.mask == self.bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        assert!(matches!(
            operator("StringEquals"),
            Ok((SetOp::Single, false, _, false))
        ));
        assert!(matches!(
            operator("ForAnyValue:StringNotLikeIfExists"),
            Ok((SetOp::AnyValue, true, _, true))
        ));
        assert!(matches!(
            operator("ForAllValues:ArnLike"),
            Ok((SetOp::AllValues, false, Family::Arn, false))
        ));
        assert!(operator("NullIfExists").is_err());
        assert!(operator("IfExists").is_err());
        assert!(operator("ForAnyValue:").is_err());
        assert!(operator("StringFoo").is_err());
        assert!(operator("").is_err());
        assert!(operator("é").is_err());
    }

    #[test]
    fn cidrs() {
        let c = |s: &str| Cidr::parse(s);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let net = c("203.0.113.0/24");
        assert!(net.is_some_and(|n| n.contains(ip("203.0.113.77"))));
        assert!(net.is_some_and(|n| !n.contains(ip("203.0.114.1"))));
        assert!(net.is_some_and(|n| n.contains(ip("::ffff:203.0.113.9"))));
        assert!(c("10.1.2.3")
            .is_some_and(|n| n.contains(ip("10.1.2.3")) && !n.contains(ip("10.1.2.4"))));
        assert!(c("0.0.0.0/0")
            .is_some_and(|n| n.contains(ip("8.8.8.8")) && !n.contains(ip("2001:db8::1"))));
        assert!(c("2001:DB8:1234:5678::/64")
            .is_some_and(|n| n.contains(ip("2001:db8:1234:5678:ffff::1"))));
        assert!(c("::/0").is_some_and(|n| n.contains(ip("2001:db8::1"))));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/08x",
            "x/8",
        ] {
            assert_eq!(c(bad), None, "{bad}");
        }
    }
}
