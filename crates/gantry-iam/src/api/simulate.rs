//! SimulatePrincipalPolicy: what the live authorizer would answer for a user, group or role,
//! with the statements that decided, so that people can debug a denial.

use super::*;
use crate::access::judge;
use crate::directory::Grants;
use crate::model::id_of;
use gantry_policy::Facts;
use std::cell::RefCell;

/// The keys a simulation evaluates with: the principal's own, then those the request gives.
/// Keys the policies ask for and nobody gave are remembered, for `MissingContextValues`.
struct SimFacts<'a> {
    grants: &'a Grants,
    given: Vec<(String, Vec<String>)>,
    missing: RefCell<Vec<String>>,
}

impl SimFacts<'_> {
    /// The keys asked for and missing since the last call.
    fn take_missing(&self) -> Vec<String> {
        let mut m = std::mem::take(&mut *self.missing.borrow_mut());
        m.sort();
        m.dedup();
        m
    }
}

impl Facts for SimFacts<'_> {
    fn get(&self, key: &str) -> Option<&[String]> {
        if key == "aws:principalarn" {
            return Some(std::slice::from_ref(&self.grants.principal_arn));
        }
        let found = self
            .given
            .iter()
            .chain(self.grants.facts.iter())
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice());
        if found.is_none() {
            self.missing.borrow_mut().push(key.to_string());
        }
        found
    }
}

pub fn principal(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let source = cx.p.required("PolicySourceArn")?;
    let actions = cx.p.list("ActionNames");
    if actions.is_empty() {
        return Err(validation(
            "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null",
        ));
    }
    let mut resources: Vec<&str> = cx.p.list("ResourceArns");
    if resources.is_empty() {
        resources.push("*");
    }
    let mut given: Vec<(String, Vec<String>)> = Vec::new();
    let names: Vec<Option<&str>> =
        cx.p.structs("ContextEntries")
            .iter()
            .map(|f| f.get("ContextKeyName").copied())
            .collect();
    for (name, values) in names
        .into_iter()
        .zip(cx.p.nested_lists("ContextEntries", "ContextKeyValues"))
    {
        let Some(name) = name else {
            return Err(invalid("Each context entry needs a ContextKeyName."));
        };
        given.push((
            name.to_ascii_lowercase(),
            values.into_iter().map(str::to_string).collect(),
        ));
    }
    cx.allow("SimulatePrincipalPolicy", source.to_string())?;

    let view = cx.iam.view();
    let rest = source.split(':').nth(5).unwrap_or_default();
    let name = id_of(rest.rsplit('/').next().unwrap_or_default());
    let not_found = || no_such(format!("The principal {source} cannot be found."));
    let group;
    let grants: &Grants = if rest.starts_with("user/") {
        view.grants
            .get(&format!("user:{name}"))
            .ok_or_else(not_found)?
    } else if rest.starts_with("role/") {
        view.grants
            .get(&format!("role:{name}"))
            .ok_or_else(not_found)?
    } else if rest.starts_with("group/") {
        let g = view.dir.groups.get(&name).ok_or_else(not_found)?;
        group = cx.iam.group_grants(&view.dir, g);
        &group
    } else {
        return Err(invalid(format!(
            "PolicySourceArn {source} must name a user, group or role of this account."
        )));
    };
    let facts = SimFacts {
        grants,
        given,
        missing: RefCell::new(Vec::new()),
    };
    let mut x = Xml::new();
    let pairs: Vec<(&str, &str)> = actions
        .iter()
        .flat_map(|a| resources.iter().map(move |r| (*a, *r)))
        .collect();
    x.list("EvaluationResults", pairs, |x, (action, resource)| {
        let e = judge(grants, action, resource, &facts);
        x.leaf("EvalActionName", action)
            .leaf("EvalResourceName", resource)
            .leaf("EvalDecision", e.decision.as_str());
        x.list("MatchedStatements", &e.matched, |x, m| {
            if let Some(s) = grants.sources.get(m.policy) {
                x.leaf("SourcePolicyId", &s.id)
                    .leaf("SourcePolicyType", s.kind);
            }
        });
        x.list("MissingContextValues", facts.take_missing(), |x, k| {
            x.text(&k);
        });
    });
    x.leaf("IsTruncated", "false");
    Ok(x)
}
