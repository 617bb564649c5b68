//! Listener rules: conditions on the request (path, host, headers, query string) that choose an
//! action before the listener's default ones, in priority order.

use super::listeners::{actions_xml, read_actions};
use super::*;
use crate::hex_id;
use crate::model::{BalancerType, Condition, Listener, Rule};
use std::collections::BTreeMap;

fn rule_not_found(arn: &str) -> ServiceError {
    not_found(
        "RuleNotFound",
        format!("One or more rules not found: {arn}"),
    )
}

/// `Conditions.member.N....`, in the shapes botocore sends: `Values` (path-pattern and
/// host-header, the old way) or `<Field>Config.Values`, `HttpHeaderConfig.HttpHeaderName`,
/// `QueryStringConfig.Values.member.M.Key/Value`.
fn conditions(p: &Params<'_>) -> Result<Vec<Condition>, ServiceError> {
    let mut out = Vec::new();
    for f in p.structs("Conditions") {
        let field = f.get("Field").copied().unwrap_or_default();
        let list = |prefix: &str| -> Vec<String> {
            let mut v: Vec<(u32, String)> = f
                .iter()
                .filter_map(|(k, val)| {
                    let n = k.strip_prefix(prefix)?.parse().ok()?;
                    Some((n, val.to_string()))
                })
                .collect();
            v.sort();
            v.into_iter().map(|x| x.1).collect()
        };
        let mut values = list("Values.member.");
        let c = match field {
            "path-pattern" => {
                values.extend(list("PathPatternConfig.Values.member."));
                Condition::Path(values)
            }
            "host-header" => {
                values.extend(list("HostHeaderConfig.Values.member."));
                Condition::Host(values)
            }
            "http-header" => {
                let name = f
                    .get("HttpHeaderConfig.HttpHeaderName")
                    .ok_or_else(|| validation("An http-header condition needs HttpHeaderConfig.HttpHeaderName."))?;
                Condition::Header(name.to_string(), list("HttpHeaderConfig.Values.member."))
            }
            "query-string" => {
                let mut pairs: BTreeMap<u32, (Option<String>, String)> = BTreeMap::new();
                for (k, v) in &f {
                    let Some(rest) = k.strip_prefix("QueryStringConfig.Values.member.") else { continue };
                    let Some((n, part)) = rest.split_once('.') else { continue };
                    let Ok(n) = n.parse() else { continue };
                    let e = pairs.entry(n).or_default();
                    match part {
                        "Key" => e.0 = Some(v.to_string()),
                        "Value" => e.1 = v.to_string(),
                        _ => {}
                    }
                }
                Condition::Query(pairs.into_values().collect())
            }
            other => {
                return Err(validation(format!(
                    "Condition field '{other}' is not served; use path-pattern, host-header, http-header or query-string."
                )))
            }
        };
        let empty = match &c {
            Condition::Path(v) | Condition::Host(v) | Condition::Header(_, v) => v.is_empty(),
            Condition::Query(v) => v.is_empty(),
        };
        if empty {
            return Err(validation(format!(
                "A {field} condition needs at least one value."
            )));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(validation("A rule needs at least one condition."));
    }
    Ok(out)
}

fn condition_xml(x: &mut Xml, c: &Condition) {
    let values = |x: &mut Xml, config: &str, v: &[String]| {
        x.list("Values", v, |x, s| {
            x.text(s);
        });
        x.node(config, |x| {
            x.list("Values", v, |x, s| {
                x.text(s);
            });
        });
    };
    match c {
        Condition::Path(v) => {
            x.leaf("Field", "path-pattern");
            values(x, "PathPatternConfig", v);
        }
        Condition::Host(v) => {
            x.leaf("Field", "host-header");
            values(x, "HostHeaderConfig", v);
        }
        Condition::Header(name, v) => {
            x.leaf("Field", "http-header");
            x.node("HttpHeaderConfig", |x| {
                x.leaf("HttpHeaderName", name);
                x.list("Values", v, |x, s| {
                    x.text(s);
                });
            });
        }
        Condition::Query(v) => {
            x.leaf("Field", "query-string");
            x.node("QueryStringConfig", |x| {
                x.list("Values", v, |x, (k, val)| {
                    x.opt("Key", k.as_deref());
                    x.leaf("Value", val);
                });
            });
        }
    }
}

fn rule_xml(x: &mut Xml, r: &Rule) {
    x.leaf("RuleArn", &r.arn);
    x.leaf("Priority", &r.priority.to_string());
    x.list("Conditions", &r.conditions, condition_xml);
    actions_xml(x, "Actions", &r.actions);
    x.leaf("IsDefault", "false");
}

fn default_rule_xml(x: &mut Xml, l: &Listener) {
    x.leaf("RuleArn", &default_rule_arn(l));
    x.leaf("Priority", "default");
    x.list("Conditions", Vec::<&Condition>::new(), condition_xml);
    actions_xml(x, "Actions", &l.actions);
    x.leaf("IsDefault", "true");
}

/// The ARN ELB gives a listener's default rule.
fn default_rule_arn(l: &Listener) -> String {
    l.arn.replacen(":listener/", ":listener-rule/", 1) + "/default"
}

fn listener_of(
    all: &BTreeMap<String, Resource>,
    arn: &str,
) -> Result<(Listener, BalancerType), ServiceError> {
    match all.get(arn) {
        Some(Resource::Listener(l)) => match all.get(&l.balancer) {
            Some(Resource::Balancer(b)) => Ok((l.clone(), b.kind)),
            _ => Err(not_found(
                "LoadBalancerNotFound",
                "The listener's load balancer is gone",
            )),
        },
        _ => Err(not_found(
            "ListenerNotFound",
            format!("Listener '{arn}' not found"),
        )),
    }
}

fn priority(p: &Params<'_>) -> Result<Option<u32>, ServiceError> {
    p.int("Priority")?
        .map(|v| {
            u32::try_from(v)
                .ok()
                .filter(|v| (1..=50_000).contains(v))
                .ok_or_else(|| validation(format!("Priority '{v}' must be between 1 and 50000.")))
        })
        .transpose()
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let listener = cx.p.required("ListenerArn")?.to_string();
    cx.allow("CreateRule", vec![listener.clone()])?;
    let all = cx.elb.snapshot();
    let (l, kind) = listener_of(&all, &listener)?;
    if kind != BalancerType::Application {
        return Err(invalid_config(
            "Rules are for application load balancers' listeners.",
        ));
    }
    let priority = priority(&cx.p)?.ok_or_else(|| validation("A rule needs a Priority."))?;
    let conditions = conditions(&cx.p)?;
    let actions =
        read_actions(cx, "Actions", kind)?.ok_or_else(|| validation("A rule needs Actions."))?;
    let tail = l
        .arn
        .split_once(":listener/")
        .map(|x| x.1)
        .unwrap_or_default();
    let arn = cx.elb.arn(&format!("listener-rule/{tail}/{}", hex_id()));
    let r = cx
        .elb
        .update(|rows| {
            let taken = rows.all().values().any(|r| matches!(r, Resource::Rule(o) if o.listener == listener && o.priority == priority));
            if taken {
                return Err(ServiceError::new("PriorityInUse", 400, format!("Priority '{priority}' is currently in use")));
            }
            let r = Rule { arn: arn.clone(), listener: listener.clone(), priority, conditions, actions };
            rows.put(&arn, Resource::Rule(r.clone()));
            Ok(r)
        })
        .await?;
    let mut x = Xml::new();
    x.list("Rules", [&r], rule_xml);
    Ok(x)
}

pub fn describe(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let listener = cx.p.get("ListenerArn");
    let arns = cx.p.list("RuleArns");
    cx.allow("DescribeRules", Vec::new())?;
    if listener.is_none() && arns.is_empty() {
        return Err(validation(
            "You must specify either listener ARN or rule ARNs",
        ));
    }
    let all = cx.elb.snapshot();
    let mut x = Xml::new();
    match listener {
        Some(la) => {
            let (l, _) = listener_of(&all, la)?;
            let mut rules = crate::model::rules_of(&all, la);
            rules.retain(|r| arns.is_empty() || arns.contains(&r.arn.as_str()));
            x.node("Rules", |x| {
                for r in &rules {
                    x.node("member", |x| rule_xml(x, r));
                }
                x.node("member", |x| default_rule_xml(x, &l));
            });
        }
        None => {
            let mut found = Vec::new();
            for a in &arns {
                match all.get(*a) {
                    Some(Resource::Rule(r)) => found.push(r.clone()),
                    _ => return Err(rule_not_found(a)),
                }
            }
            x.list("Rules", &found, rule_xml);
        }
    }
    Ok(x)
}

pub async fn modify(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("RuleArn")?.to_string();
    cx.allow("ModifyRule", vec![arn.clone()])?;
    let all = cx.elb.snapshot();
    let Some(Resource::Rule(old)) = all.get(&arn).cloned() else {
        return Err(rule_not_found(&arn));
    };
    let (_, kind) = listener_of(&all, &old.listener)?;
    let conditions = if cx.p.structs("Conditions").is_empty() {
        old.conditions.clone()
    } else {
        conditions(&cx.p)?
    };
    let actions = read_actions(cx, "Actions", kind)?.unwrap_or(old.actions.clone());
    let r = cx
        .elb
        .update(|rows| {
            if rows.get(&arn).is_none() {
                return Err(rule_not_found(&arn));
            }
            let r = Rule {
                conditions,
                actions,
                ..old
            };
            rows.put(&arn, Resource::Rule(r.clone()));
            Ok(r)
        })
        .await?;
    let mut x = Xml::new();
    x.list("Rules", [&r], rule_xml);
    Ok(x)
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("RuleArn")?.to_string();
    cx.allow("DeleteRule", vec![arn.clone()])?;
    cx.elb
        .update(|rows| {
            if !matches!(rows.get(&arn), Some(Resource::Rule(_))) {
                return Err(if arn.ends_with("/default") {
                    ServiceError::new(
                        "OperationNotPermitted",
                        400,
                        "Default rule cannot be deleted",
                    )
                } else {
                    rule_not_found(&arn)
                });
            }
            rows.delete(&arn);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

pub async fn set_priorities(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let mut changes = Vec::new();
    for f in cx.p.structs("RulePriorities") {
        let arn = f.get("RuleArn").copied().unwrap_or_default().to_string();
        let prio = f
            .get("Priority")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| (1..=50_000).contains(p))
            .ok_or_else(|| validation("Each rule priority must be between 1 and 50000."))?;
        changes.push((arn, prio));
    }
    cx.allow(
        "SetRulePriorities",
        changes.iter().map(|c| c.0.clone()).collect(),
    )?;
    let rules = cx
        .elb
        .update(|rows| {
            let mut out = Vec::new();
            for (arn, prio) in &changes {
                let Some(Resource::Rule(mut r)) = rows.get(arn).cloned() else {
                    return Err(rule_not_found(arn));
                };
                r.priority = *prio;
                rows.put(arn, Resource::Rule(r.clone()));
                out.push(r);
            }
            // No two rules of a listener may share a priority once the change is made.
            let mut seen = std::collections::BTreeSet::new();
            for r in rows.all().values() {
                if let Resource::Rule(r) = r {
                    if !seen.insert((r.listener.clone(), r.priority)) {
                        return Err(ServiceError::new(
                            "PriorityInUse",
                            400,
                            format!("Priority '{}' is currently in use", r.priority),
                        ));
                    }
                }
            }
            Ok(out)
        })
        .await?;
    let mut x = Xml::new();
    x.list("Rules", &rules, rule_xml);
    Ok(x)
}
