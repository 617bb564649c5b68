//! Parsing and validating a policy document into its compiled form.
//!
//! Validation follows IAM's `MalformedPolicyDocument` checks and messages
//! where they are known. Everything that evaluation needs is prepared here:
//! action patterns are lower-cased and classified, resource ARNs are split
//! into segments, policy variables are pre-split, and numbers, dates and
//! CIDR ranges in conditions are parsed.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::condition::{self, Condition};
use crate::pattern::{head_of, ArnPat, Fold, Pat, PreparedArn, Syntax};
use crate::principal::Principals;
use crate::{Facts, PolicyError, Query, Who};

/// Which kind of document is being compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Identity-based: Action and Resource required, no Principal.
    Identity,
    /// A role trust policy: Principal required, Resource optional.
    Trust,
}

/// A compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) deny: bool,
    actions: Vec<Pat>,
    not_action: bool,
    /// `None` when the statement has neither Resource nor NotResource.
    resources: Option<(Vec<ArnPat>, bool)>,
    /// `None` for identity policies.
    principal: Option<(Principals, bool)>,
    conditions: Vec<Condition>,
}

/// A compiled document: its statements plus a compact action pre-filter.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) statements: Vec<Statement>,
    /// The `(head, mask)` pairs of every statement's action patterns, one
    /// statement after the other (a NotAction statement has one `(0, 0)`
    /// pair, which never rejects). Scanning this contiguous array rejects
    /// most statements without touching them.
    heads: Vec<(u64, u64)>,
    /// Where each statement's pairs end in `heads`.
    ends: Vec<usize>,
}

impl Compiled {
    fn new(statements: Vec<Statement>) -> Compiled {
        let mut heads = Vec::new();
        let mut ends = Vec::with_capacity(statements.len());
        for s in &statements {
            if s.not_action {
                heads.push((0, 0));
            } else {
                heads.extend(s.actions.iter().map(Pat::quick));
            }
            ends.push(heads.len());
        }
        Compiled {
            statements,
            heads,
            ends,
        }
    }

    /// Calls `f` with the index of every statement that applies to `req`.
    #[inline]
    pub(crate) fn each_applying(&self, req: &Prepared<'_>, mut f: impl FnMut(usize, &Statement)) {
        let mut start = 0;
        for (i, (s, &end)) in self.statements.iter().zip(&self.ends).enumerate() {
            let heads = self.heads.get(start..end).unwrap_or_default();
            start = end;
            if heads
                .iter()
                .any(|&(head, mask)| req.action_head & mask == head)
                && s.applies(req)
            {
                f(i, s);
            }
        }
    }
}

/// Actions up to this many bytes are lower-cased into a stack buffer once
/// per evaluation; longer ones are compared case-insensitively each time.
pub(crate) const ACTION_BUFFER: usize = 128;

/// The parts of a query that are prepared once per evaluation.
pub(crate) struct Prepared<'q> {
    pub(crate) query: &'q Query<'q>,
    action_head: u64,
    /// The ASCII-lower-cased action, when it fit the buffer.
    action_lower: Option<&'q str>,
    resource: PreparedArn<'q>,
}

impl<'q> Prepared<'q> {
    /// Prepares `query`, using `buffer` for the lower-cased action.
    pub(crate) fn new(query: &'q Query<'q>, buffer: &'q mut [u8; ACTION_BUFFER]) -> Prepared<'q> {
        let bytes = query.action.as_bytes();
        let action_lower = match buffer.get_mut(..bytes.len()) {
            Some(buf) => {
                buf.copy_from_slice(bytes);
                buf.make_ascii_lowercase();
                // ASCII lower-casing keeps UTF-8 valid; this never fails.
                std::str::from_utf8(buf).ok()
            }
            None => None,
        };
        Prepared {
            query,
            action_head: head_of(query.action, Fold::Ascii),
            action_lower,
            resource: PreparedArn::new(query.resource),
        }
    }
}

impl Statement {
    /// Whether this statement applies to the request.
    pub(crate) fn applies(&self, req: &Prepared<'_>) -> bool {
        let query = req.query;
        let facts: &dyn Facts = query.facts;
        let head = req.action_head;
        let action = match req.action_lower {
            Some(lowered) => self
                .actions
                .iter()
                .any(|p| p.matches_lowered(lowered, head, facts)),
            None => self
                .actions
                .iter()
                .any(|p| p.matches_head(query.action, head, facts)),
        };
        if action == self.not_action {
            return false;
        }
        if let Some((patterns, not)) = &self.resources {
            let hit = patterns
                .iter()
                .any(|p| p.matches_prepared(&req.resource, facts));
            if hit == *not {
                return false;
            }
        }
        if let Some((principals, not)) = &self.principal {
            // An anonymous request is named by nothing but "*".
            let nobody = Who {
                account: "",
                aws: &[],
                service: None,
            };
            let who = query.principal.unwrap_or(&nobody);
            let ok = if *not {
                !principals.exempts(who)
            } else {
                principals.names(who)
            };
            if !ok {
                return false;
            }
        }
        self.conditions.iter().all(|c| c.holds(facts))
    }
}

fn err(message: &str) -> PolicyError {
    PolicyError::new(message)
}

fn syntax() -> PolicyError {
    err("Syntax errors in policy.")
}

/// Compiles a whole document.
pub(crate) fn compile(document: &str, kind: Kind) -> Result<Compiled, PolicyError> {
    let value: Value = serde_json::from_str(document).map_err(|_| syntax())?;
    let Value::Object(top) = value else {
        return Err(syntax());
    };
    for key in top.keys() {
        if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
            return Err(syntax());
        }
    }
    let variables = match top.get("Version") {
        None => false,
        Some(Value::String(v)) if v == "2012-10-17" => true,
        Some(Value::String(v)) if v == "2008-10-17" => false,
        Some(_) => {
            return Err(err(
                "Policy document must be version 2012-10-17 or greater.",
            ))
        }
    };
    if let Some(id) = top.get("Id") {
        if !id.is_string() {
            return Err(syntax());
        }
    }
    let statements = match top.get("Statement") {
        None => return Err(err("Missing required field Statement")),
        Some(Value::Object(one)) => vec![one],
        Some(Value::Array(many)) => many
            .iter()
            .map(|s| s.as_object().ok_or_else(syntax))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(syntax()),
    };
    let mut sids = HashSet::new();
    let mut out = Vec::with_capacity(statements.len());
    for statement in statements {
        let compiled = compile_statement(statement, kind, variables)?;
        if let Some(sid) = compiled.sid.as_deref().filter(|s| !s.is_empty()) {
            if !sids.insert(sid.to_string()) {
                return Err(err(
                    "Statement IDs (SID) in a single policy must be unique.",
                ));
            }
        }
        out.push(compiled);
    }
    Ok(Compiled::new(out))
}

const STATEMENT_FIELDS: [&str; 9] = [
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
];

fn compile_statement(
    st: &Map<String, Value>,
    kind: Kind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    if st.keys().any(|k| !STATEMENT_FIELDS.contains(&k.as_str())) {
        return Err(syntax());
    }
    let sid = match st.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(err(
                    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
                ));
            }
            Some(s.clone())
        }
        Some(_) => return Err(syntax()),
    };
    let deny = match st.get("Effect") {
        None => return Err(err("Missing required field Effect")),
        Some(Value::String(e)) if e == "Allow" => false,
        Some(Value::String(e)) if e == "Deny" => true,
        Some(Value::String(e)) => return Err(PolicyError::new(format!("Invalid effect: {e}"))),
        Some(_) => return Err(syntax()),
    };
    let (actions, not_action) = match (st.get("Action"), st.get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(err("Statement cannot contain both Action and NotAction."))
        }
        (Some(a), None) => (compile_actions(a)?, false),
        (None, Some(a)) => (compile_actions(a)?, true),
        (None, None) => return Err(err("Policy statement must contain actions.")),
    };
    let resources = match (st.get("Resource"), st.get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(err(
                "Statement cannot contain both Resource and NotResource.",
            ))
        }
        (Some(r), None) => Some((compile_resources(r, variables)?, false)),
        (None, Some(r)) => Some((compile_resources(r, variables)?, true)),
        (None, None) if kind == Kind::Identity => {
            return Err(err("Policy statement must contain resources."))
        }
        (None, None) => None,
    };
    let principal = match (kind, st.get("Principal"), st.get("NotPrincipal")) {
        (Kind::Identity, None, None) => None,
        (Kind::Identity, _, _) => {
            return Err(err("Policy document should not specify a principal."))
        }
        (Kind::Trust, Some(_), Some(_)) => {
            return Err(err(
                "Statement cannot contain both Principal and NotPrincipal.",
            ))
        }
        (Kind::Trust, Some(p), None) => Some((Principals::compile(p)?, false)),
        (Kind::Trust, None, Some(p)) => Some((Principals::compile(p)?, true)),
        (Kind::Trust, None, None) => return Err(err("Missing required field Principal")),
    };
    let conditions = match st.get("Condition") {
        None => Vec::new(),
        Some(block) => condition::compile_block(block, variables)?,
    };
    Ok(Statement {
        sid,
        deny,
        actions,
        not_action,
        resources,
        principal,
        conditions,
    })
}

/// A string or a non-empty array of strings; `empty` is the error for `[]`.
fn string_list<'v>(value: &'v Value, empty: &str) -> Result<Vec<&'v str>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if items.is_empty() => Err(err(empty)),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(syntax))
            .collect(),
        _ => Err(syntax()),
    }
}

fn compile_actions(value: &Value) -> Result<Vec<Pat>, PolicyError> {
    let syntax = Syntax {
        wildcards: true,
        variables: false,
        fold: Fold::Ascii,
    };
    string_list(value, "Policy statement must contain actions.")?
        .into_iter()
        .map(|action| {
            if action != "*" && !condition::has_vendor(action) {
                return Err(err(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                ));
            }
            Ok(Pat::compile(action, syntax))
        })
        .collect()
}

fn compile_resources(value: &Value, variables: bool) -> Result<Vec<ArnPat>, PolicyError> {
    string_list(value, "Policy statement must contain resources.")?
        .into_iter()
        .map(|resource| {
            ArnPat::compile(resource, variables).ok_or_else(|| {
                PolicyError::new(format!(
                    "Resource {resource} must be in ARN format or \"*\"."
                ))
            })
        })
        .collect()
}
