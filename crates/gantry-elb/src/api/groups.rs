//! Target groups: the protocol and port of their targets, how they are checked, and their
//! attributes (deregistration delay, algorithm, stickiness, slow start).

use super::*;
use crate::health::valid_matcher;
use crate::hex_id;
use crate::model::{balancers_of, default_attributes, HealthCheck, Protocol, TargetGroup};

fn group_not_found(what: &str) -> ServiceError {
    not_found(
        "TargetGroupNotFound",
        format!("One or more target groups not found: {what}"),
    )
}

/// The group `arn` names, as the snapshot has it.
pub(super) fn group(cx: &Ctx<'_>, arn: &str) -> Result<TargetGroup, ServiceError> {
    match cx.elb.snapshot().get(arn) {
        Some(Resource::Group(g)) => Ok(g.clone()),
        _ => Err(group_not_found(arn)),
    }
}

fn protocol(p: &Params<'_>, name: &str) -> Result<Option<Protocol>, ServiceError> {
    p.get(name)
        .map(|s| {
            Protocol::parse(s).ok_or_else(|| {
                validation(format!(
                    "Protocol '{s}' is not served; use HTTP or TCP (HTTPS listeners need a certificate, which gantry does not issue yet)."
                ))
            })
        })
        .transpose()
}

fn bounded(p: &Params<'_>, name: &str, lo: i64, hi: i64) -> Result<Option<u32>, ServiceError> {
    match p.int(name)? {
        None => Ok(None),
        Some(v) if (lo..=hi).contains(&v) => Ok(Some(v as u32)),
        Some(v) => Err(validation(format!(
            "1 validation error detected: Value '{v}' at '{}' failed to satisfy constraint: Member must have value between {lo} and {hi}",
            name
        ))),
    }
}

/// Applies the request's health check parameters to `h`.
fn health_params(p: &Params<'_>, h: &mut HealthCheck) -> Result<(), ServiceError> {
    if let Some(e) = p.bool("HealthCheckEnabled")? {
        h.enabled = e;
    }
    if let Some(pr) = protocol(p, "HealthCheckProtocol")? {
        h.protocol = pr;
    }
    if let Some(port) = p.get("HealthCheckPort") {
        if port != "traffic-port" && !port.parse::<u16>().is_ok_and(|n| n > 0) {
            return Err(validation(format!(
                "Health check port '{port}' is not valid."
            )));
        }
        h.port = port.to_string();
    }
    if let Some(path) = p.get("HealthCheckPath") {
        if !path.starts_with('/') || path.len() > 1024 {
            return Err(validation("A health check path must start with '/'."));
        }
        h.path = path.to_string();
    }
    if let Some(v) = bounded(p, "HealthCheckIntervalSeconds", 5, 300)? {
        h.interval = v;
    }
    if let Some(v) = bounded(p, "HealthCheckTimeoutSeconds", 2, 120)? {
        h.timeout = v;
    }
    if let Some(v) = bounded(p, "HealthyThresholdCount", 2, 10)? {
        h.healthy = v;
    }
    if let Some(v) = bounded(p, "UnhealthyThresholdCount", 2, 10)? {
        h.unhealthy = v;
    }
    if let Some(m) = p.get("Matcher.HttpCode") {
        if !valid_matcher(m) {
            return Err(validation(format!(
                "Health check matcher HTTP code '{m}' must be a code, list or range between 200 and 499."
            )));
        }
        h.matcher = m.to_string();
    }
    if h.timeout >= h.interval {
        return Err(invalid_config(
            "Health check timeout must be smaller than the interval",
        ));
    }
    Ok(())
}

pub(super) fn group_xml(x: &mut Xml, g: &TargetGroup, balancers: &[String]) {
    x.leaf("TargetGroupArn", &g.arn);
    x.leaf("TargetGroupName", &g.name);
    x.leaf("Protocol", g.protocol.as_str());
    x.leaf("Port", &g.port.to_string());
    x.leaf("VpcId", "vpc-gantry");
    x.leaf("HealthCheckProtocol", g.health.protocol.as_str());
    x.leaf("HealthCheckPort", &g.health.port);
    x.leaf(
        "HealthCheckEnabled",
        if g.health.enabled { "true" } else { "false" },
    );
    x.leaf("HealthCheckIntervalSeconds", &g.health.interval.to_string());
    x.leaf("HealthCheckTimeoutSeconds", &g.health.timeout.to_string());
    x.leaf("HealthyThresholdCount", &g.health.healthy.to_string());
    x.leaf("UnhealthyThresholdCount", &g.health.unhealthy.to_string());
    if g.health.protocol == Protocol::Http {
        x.leaf("HealthCheckPath", &g.health.path);
        x.node("Matcher", |x| {
            x.leaf("HttpCode", &g.health.matcher);
        });
    }
    x.list("LoadBalancerArns", balancers, |x, b| {
        x.text(b);
    });
    x.leaf("TargetType", &g.target_type);
    if g.protocol == Protocol::Http {
        x.leaf("ProtocolVersion", "HTTP1");
    }
    x.leaf("IpAddressType", "ipv4");
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = cx.p.required("Name")?;
    if name.is_empty()
        || name.len() > 32
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || name.starts_with('-')
        || name.ends_with('-')
    {
        return Err(validation(format!(
            "Target group name '{name}' can have a maximum of 32 characters, contain only alphanumeric characters or hyphens, and must not begin or end with a hyphen"
        )));
    }
    let target_type = cx.p.get("TargetType").unwrap_or("instance").to_string();
    if target_type != "ip" {
        return Err(validation(format!(
            "Target type '{target_type}' is not served yet; use ip (a task's address, or the host's for a bridge task's host port)."
        )));
    }
    let proto = protocol(&cx.p, "Protocol")?
        .ok_or_else(|| validation("A target group of type ip needs a protocol (HTTP or TCP)."))?;
    let port = cx
        .p
        .int("Port")?
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| validation("A target group of type ip needs a port between 1 and 65535."))?
        as u16;
    let mut health = HealthCheck::defaults(proto);
    health_params(&cx.p, &mut health)?;
    let tags = read_tags(&cx.p)?;
    let arn = cx.elb.arn(&format!("targetgroup/{name}/{}", hex_id()));
    cx.allow("CreateTargetGroup", vec![arn.clone()])?;
    let g = cx
        .elb
        .update(|rows| {
            let same = rows.all().values().find_map(|r| match r {
                Resource::Group(g) if g.name == name => Some(g.clone()),
                _ => None,
            });
            if let Some(g) = same {
                if g.protocol == proto && g.port == port && g.health == health {
                    return Ok(g);
                }
                return Err(ServiceError::new(
                    "DuplicateTargetGroupName",
                    400,
                    "A target group with the same name exists, but with different settings",
                ));
            }
            let g = TargetGroup {
                arn: arn.clone(),
                name: name.to_string(),
                protocol: proto,
                port,
                target_type,
                health,
                attributes: default_attributes(proto),
                targets: Vec::new(),
                tags,
            };
            rows.put(&arn, Resource::Group(g.clone()));
            Ok(g)
        })
        .await?;
    let mut x = Xml::new();
    x.list("TargetGroups", [&g], |x, g| group_xml(x, g, &[]));
    Ok(x)
}

pub fn describe(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arns = cx.p.list("TargetGroupArns");
    let names = cx.p.list("Names");
    let balancer = cx.p.get("LoadBalancerArn");
    cx.allow("DescribeTargetGroups", Vec::new())?;
    let all = cx.elb.snapshot();
    if let Some(b) = balancer {
        if !matches!(all.get(b), Some(Resource::Balancer(_))) {
            return Err(not_found(
                "LoadBalancerNotFound",
                format!("Load balancer '{b}' not found"),
            ));
        }
    }
    let groups: Vec<&TargetGroup> = all
        .values()
        .filter_map(|r| match r {
            Resource::Group(g) => Some(g),
            _ => None,
        })
        .collect();
    for a in &arns {
        if !groups.iter().any(|g| g.arn == *a) {
            return Err(group_not_found(a));
        }
    }
    for n in &names {
        if !groups.iter().any(|g| g.name == *n) {
            return Err(group_not_found(n));
        }
    }
    let chosen: Vec<(&TargetGroup, Vec<String>)> = groups
        .into_iter()
        .filter(|g| arns.is_empty() || arns.contains(&g.arn.as_str()))
        .filter(|g| names.is_empty() || names.contains(&g.name.as_str()))
        .map(|g| (g, balancers_of(&all, &g.arn)))
        .filter(|(_, b)| balancer.is_none_or(|want| b.iter().any(|x| x == want)))
        .collect();
    let mut x = Xml::new();
    x.list("TargetGroups", chosen, |x, (g, b)| group_xml(x, g, &b));
    Ok(x)
}

pub async fn modify(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("TargetGroupArn")?.to_string();
    cx.allow("ModifyTargetGroup", vec![arn.clone()])?;
    let mut g = group(cx, &arn)?;
    health_params(&cx.p, &mut g.health)?;
    let g = cx
        .elb
        .update(|rows| {
            let Some(Resource::Group(now)) = rows.get(&arn).cloned() else {
                return Err(group_not_found(&arn));
            };
            let g = TargetGroup {
                health: g.health,
                ..now
            };
            rows.put(&arn, Resource::Group(g.clone()));
            Ok(g)
        })
        .await?;
    let b = balancers_of(&cx.elb.snapshot(), &arn);
    let mut x = Xml::new();
    x.list("TargetGroups", [&g], |x, g| group_xml(x, g, &b));
    Ok(x)
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("TargetGroupArn")?.to_string();
    cx.allow("DeleteTargetGroup", vec![arn.clone()])?;
    cx.elb
        .update(|rows| {
            if !balancers_of(rows.all(), &arn).is_empty() {
                return Err(ServiceError::new(
                    "ResourceInUse",
                    400,
                    format!("Target group '{arn}' is currently in use by a listener or a rule"),
                ));
            }
            if rows.get(&arn).is_some() {
                rows.delete(&arn);
            }
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

fn attributes_xml(g: &TargetGroup) -> Xml {
    let mut x = Xml::new();
    x.list("Attributes", &g.attributes, |x, (k, v)| {
        x.leaf("Key", k);
        x.leaf("Value", v);
    });
    x
}

pub fn describe_attributes(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("TargetGroupArn")?;
    cx.allow("DescribeTargetGroupAttributes", vec![arn.to_string()])?;
    Ok(attributes_xml(&group(cx, arn)?))
}

/// Checks one attribute's value.
fn check_attribute(proto: Protocol, key: &str, value: &str) -> Result<(), ServiceError> {
    let int_in = |lo: i64, hi: i64| value.parse::<i64>().is_ok_and(|v| (lo..=hi).contains(&v));
    let ok = match key {
        "deregistration_delay.timeout_seconds" => int_in(0, 3600),
        "stickiness.enabled" => matches!(value, "true" | "false"),
        // ELB's rule: application load balancers' groups stick by cookie, network ones by
        // the client's address.
        "stickiness.type" => match proto {
            Protocol::Http => value == "lb_cookie",
            Protocol::Tcp => value == "source_ip",
        },
        "stickiness.lb_cookie.duration_seconds" => proto == Protocol::Http && int_in(1, 604_800),
        "slow_start.duration_seconds" => {
            proto == Protocol::Http && (value == "0" || int_in(30, 900))
        }
        "load_balancing.algorithm.type" => {
            proto == Protocol::Http && matches!(value, "round_robin" | "least_outstanding_requests")
        }
        _ => {
            return Err(validation(format!(
                "Target group attribute key '{key}' is not recognized"
            )))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "Target group attribute '{key}' cannot be '{value}'"
        )))
    }
}

pub async fn modify_attributes(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("TargetGroupArn")?.to_string();
    cx.allow("ModifyTargetGroupAttributes", vec![arn.clone()])?;
    let proto = group(cx, &arn)?.protocol;
    let mut changes = Vec::new();
    for f in cx.p.structs("Attributes") {
        let key = f.get("Key").copied().unwrap_or_default();
        let value = f.get("Value").copied().unwrap_or_default();
        check_attribute(proto, key, value)?;
        changes.push((key.to_string(), value.to_string()));
    }
    let g = cx
        .elb
        .update(|rows| {
            let Some(Resource::Group(mut g)) = rows.get(&arn).cloned() else {
                return Err(group_not_found(&arn));
            };
            for (k, v) in changes {
                g.attributes.insert(k, v);
            }
            rows.put(&arn, Resource::Group(g.clone()));
            Ok(g)
        })
        .await?;
    Ok(attributes_xml(&g))
}
