//! Who may do what: gantry-core's [`Authorizer`] and gantry-auth's [`Keys`] over the IAM view.
//!
//! The root is allowed everything. Anyone else is judged by AWS's rule over the identity-based
//! policies of their user (its own, inline, and its groups') or of the role their session
//! assumed: an explicit Deny wins, then an Allow, else the request is denied.

use crate::directory::{grants_key, Grants, View};
use crate::Iam;
use gantry_auth::{Keys, Secret};
use gantry_core::authz::{Authorizer, Denied, Request};
use gantry_core::Principal;
use gantry_policy::{evaluate, Decision, Evaluation, Facts, Query, Who};
use std::cell::OnceCell;
use std::sync::Arc;

/// The front door's keys and authorizer, both reading the identity service's view.
#[derive(Clone)]
pub struct Access(pub Arc<Iam>);

impl Keys for Access {
    fn secret(&self, access_key_id: &str) -> Option<Secret> {
        self.0.view().keys.get(access_key_id).cloned()
    }
}

/// The condition keys of one request on one resource, looked up as policies ask for them.
pub(crate) struct RequestFacts<'a> {
    pub grants: &'a Grants,
    pub principal: &'a Principal,
    pub request: &'a Request<'a>,
    pub resource: &'a str,
    tags: OnceCell<Vec<(String, Vec<String>)>>,
    context: OnceCell<Vec<(&'static str, Vec<String>)>>,
}

impl<'a> RequestFacts<'a> {
    pub fn new(
        grants: &'a Grants,
        principal: &'a Principal,
        request: &'a Request<'a>,
        resource: &'a str,
    ) -> Self {
        RequestFacts {
            grants,
            principal,
            request,
            resource,
            tags: OnceCell::new(),
            context: OnceCell::new(),
        }
    }

    fn context(&self) -> &[(&'static str, Vec<String>)] {
        self.context.get_or_init(|| {
            let c = self.request.context;
            let mut v = vec![
                (
                    "aws:currenttime",
                    vec![crate::model::iso8601(c.current_time)],
                ),
                ("aws:epochtime", vec![c.current_time.to_string()]),
                ("aws:securetransport", vec![c.secure_transport.to_string()]),
                ("aws:requestedregion", vec![c.region.clone()]),
            ];
            if let Some(ip) = c.source_ip {
                v.push(("aws:sourceip", vec![ip.to_string()]));
            }
            v
        })
    }

    fn tags(&self) -> &[(String, Vec<String>)] {
        self.tags.get_or_init(|| {
            if self.resource == "*" {
                return Vec::new();
            }
            self.request
                .tags
                .tags_of(self.resource)
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), vec![v]))
                .collect()
        })
    }
}

fn find<'v, K: AsRef<str>>(list: &'v [(K, Vec<String>)], key: &str) -> Option<&'v [String]> {
    list.iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_slice())
}

impl Facts for RequestFacts<'_> {
    fn get(&self, key: &str) -> Option<&[String]> {
        match key {
            "aws:userid" => return Some(std::slice::from_ref(&self.principal.user_id)),
            "aws:principalarn" => return Some(std::slice::from_ref(&self.grants.principal_arn)),
            "aws:principalaccount" => return Some(std::slice::from_ref(&self.principal.account)),
            _ => {}
        }
        if let Some(v) = find(&self.grants.facts, key).or_else(|| find(self.request.keys, key)) {
            return Some(v);
        }
        if let Some((_, tag)) = key.split_once(":resourcetag/") {
            return find(self.tags(), tag);
        }
        find(self.context(), key)
    }
}

/// The reason a denial gives, as AWS words it.
pub(crate) fn reason(action: &str, decision: Decision) -> String {
    match decision {
        Decision::ExplicitDeny => "with an explicit deny in an identity-based policy".to_string(),
        _ => format!("because no identity-based policy allows the {action} action"),
    }
}

/// Evaluates `grants` for `action` on `resource`.
pub(crate) fn judge(
    grants: &Grants,
    action: &str,
    resource: &str,
    facts: &dyn Facts,
) -> Evaluation {
    evaluate(
        &grants.policies,
        &Query {
            action,
            resource,
            facts,
            principal: None,
        },
    )
}

impl Access {
    fn grants(view: &View, principal: &Principal) -> Option<Arc<Grants>> {
        view.grants.get(&grants_key(&principal.arn)?).cloned()
    }
}

impl Authorizer for Access {
    fn authorize(&self, principal: &Principal, request: &Request<'_>) -> Result<(), Denied> {
        if principal.admin {
            return Ok(());
        }
        let view = self.0.view();
        let grants = Self::grants(&view, principal).unwrap_or_default();
        for resource in request.resources {
            let facts = RequestFacts::new(&grants, principal, request, resource);
            let e = judge(&grants, request.action, resource, &facts);
            if e.decision != Decision::Allowed {
                return Err(Denied {
                    resource: resource.clone(),
                    reason: reason(request.action, e.decision),
                });
            }
        }
        Ok(())
    }

    fn role_trusts(&self, role_arn: &str, service: &str) -> Result<(), String> {
        trusted_by(&self.0.view(), role_arn, service).map(|_| ())
    }
}

/// The role `role` (an ARN, or a role's name) when its trust policy lets `service` assume it.
pub(crate) fn trusted_by<'v>(
    view: &'v crate::directory::View,
    role: &str,
    service: &str,
) -> Result<&'v crate::directory::RoleView, String> {
    let found = if role.starts_with("arn:") {
        crate::api::role_by_arn(view, role)
    } else {
        view.roles.get(&crate::model::id_of(role))
    };
    let Some(found) = found else {
        return Err(format!("the role {role} does not exist"));
    };
    let who = Who {
        account: "",
        aws: &[],
        service: Some(service),
    };
    let e = evaluate(
        std::slice::from_ref(&found.trust),
        &Query {
            action: "sts:AssumeRole",
            resource: &found.arn,
            facts: &NoFacts,
            principal: Some(&who),
        },
    );
    match e.decision {
        Decision::Allowed => Ok(found),
        _ => Err(format!(
            "the trust policy of {role} does not let {service} assume it"
        )),
    }
}

/// A context with no keys.
pub(crate) struct NoFacts;

impl Facts for NoFacts {
    fn get(&self, _key: &str) -> Option<&[String]> {
        None
    }
}
