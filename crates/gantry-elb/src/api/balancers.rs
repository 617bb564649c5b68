//! Load balancers: an application or network load balancer listens at the data plane's
//! address; its DNSName is that address, so every client reaches it without a resolver.

use super::*;
use crate::model::{Balancer, BalancerType};
use crate::{hex_id, iso8601, unix_now};

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-")
}

pub(super) fn balancer_xml(x: &mut Xml, b: &Balancer) {
    x.leaf("LoadBalancerArn", &b.arn);
    x.leaf("DNSName", &b.address);
    x.leaf("CanonicalHostedZoneId", "Z0GANTRY");
    x.leaf("CreatedTime", &iso8601(b.created));
    x.leaf("LoadBalancerName", &b.name);
    x.leaf("Scheme", &b.scheme);
    x.leaf("VpcId", "vpc-gantry");
    x.node("State", |x| {
        x.leaf("Code", "active");
    });
    x.leaf("Type", b.kind.as_str());
    x.list("AvailabilityZones", ["local"], |x, z| {
        x.leaf("ZoneName", z);
        x.leaf("SubnetId", "subnet-gantry");
    });
    x.leaf("IpAddressType", "ipv4");
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = cx.p.required("Name")?;
    if !valid_name(name) {
        return Err(validation(format!(
            "The load balancer name '{name}' is not valid: at most 32 letters, digits and hyphens, not starting or ending with a hyphen."
        )));
    }
    let kind = match cx.p.get("Type").unwrap_or("application") {
        "application" => BalancerType::Application,
        "network" => BalancerType::Network,
        other => {
            return Err(validation(format!(
                "Load balancer type '{other}' is not served; use application or network."
            )))
        }
    };
    let scheme = cx.p.get("Scheme").unwrap_or("internet-facing").to_string();
    if !matches!(scheme.as_str(), "internet-facing" | "internal") {
        return Err(validation(format!("Scheme '{scheme}' is not valid.")));
    }
    let tags = read_tags(&cx.p)?;
    let arn = cx.elb.arn(&format!(
        "loadbalancer/{}/{name}/{}",
        kind.arn_part(),
        hex_id()
    ));
    cx.allow("CreateLoadBalancer", vec![arn.clone()])?;
    let address = cx.elb.settings().address.clone();
    let b = cx
        .elb
        .update(|rows| {
            let same = rows.all().values().find_map(|r| match r {
                Resource::Balancer(b) if b.name == name => Some(b.clone()),
                _ => None,
            });
            if let Some(b) = same {
                // ELB answers a repeated create with the same settings with the balancer.
                if b.kind == kind && b.scheme == scheme {
                    return Ok(b);
                }
                return Err(ServiceError::new(
                    "DuplicateLoadBalancerName",
                    400,
                    "A load balancer with the same name exists, but with different settings",
                ));
            }
            let b = Balancer {
                arn: arn.clone(),
                name: name.to_string(),
                kind,
                scheme,
                created: unix_now(),
                address,
                tags,
            };
            rows.put(&arn, Resource::Balancer(b.clone()));
            Ok(b)
        })
        .await?;
    let mut x = Xml::new();
    x.list("LoadBalancers", [&b], balancer_xml);
    Ok(x)
}

pub fn describe(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arns = cx.p.list("LoadBalancerArns");
    let names = cx.p.list("Names");
    cx.allow("DescribeLoadBalancers", Vec::new())?;
    let all = cx.elb.snapshot();
    let balancers: Vec<&Balancer> = all
        .values()
        .filter_map(|r| match r {
            Resource::Balancer(b) => Some(b),
            _ => None,
        })
        .collect();
    let chosen: Vec<&Balancer> = if !arns.is_empty() {
        let mut v = Vec::new();
        for a in &arns {
            let b = balancers.iter().find(|b| b.arn == *a).ok_or_else(|| {
                not_found(
                    "LoadBalancerNotFound",
                    format!("Load balancers '[{a}]' not found"),
                )
            })?;
            v.push(*b);
        }
        v
    } else if !names.is_empty() {
        let mut v = Vec::new();
        for n in &names {
            let b = balancers.iter().find(|b| b.name == *n).ok_or_else(|| {
                not_found(
                    "LoadBalancerNotFound",
                    format!("Load balancers '[{n}]' not found"),
                )
            })?;
            v.push(*b);
        }
        v
    } else {
        balancers
    };
    let mut x = Xml::new();
    x.list("LoadBalancers", chosen, balancer_xml);
    Ok(x)
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("LoadBalancerArn")?.to_string();
    cx.allow("DeleteLoadBalancer", vec![arn.clone()])?;
    cx.elb
        .update(|rows| {
            // Deleting one that is gone succeeds, as on ELB; its listeners go with it.
            let listeners: Vec<String> = rows
                .all()
                .iter()
                .filter(|(_, r)| matches!(r, Resource::Listener(l) if l.balancer == arn))
                .map(|(k, _)| k.clone())
                .collect();
            for l in listeners {
                for r in crate::model::rules_of(rows.all(), &l) {
                    rows.delete(&r.arn);
                }
                rows.delete(&l);
            }
            if rows.get(&arn).is_some() {
                rows.delete(&arn);
            }
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}
