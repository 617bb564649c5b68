//! Targets: registered into a group (an address and a port), checked, drained when they leave.

use super::groups::group;
use super::*;
use crate::health::State;
use crate::model::balancers_of;
use crate::model::Target;
use std::net::IpAddr;

/// `Targets.member.N.Id` / `.Port` (the group's port when none is given).
fn read_targets(cx: &Ctx<'_>, default_port: u16) -> Result<Vec<Target>, ServiceError> {
    let given = cx.p.structs("Targets");
    if given.is_empty() {
        return Err(validation("1 validation error detected: Value null at 'targets' failed to satisfy constraint: Member must not be null"));
    }
    given
        .iter()
        .map(|f| {
            let id = f.get("Id").copied().unwrap_or_default();
            if id.parse::<IpAddr>().is_err() {
                return Err(ServiceError::new(
                    "InvalidTarget",
                    400,
                    format!("The IP address '{id}' is not a valid IPv4 address"),
                ));
            }
            let port = match f.get("Port") {
                None => default_port,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    validation(format!("Port '{p}' must be between 1 and 65535."))
                })?,
            };
            Ok(Target {
                id: id.to_string(),
                port,
            })
        })
        .collect()
}

pub async fn register(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    change(cx, "RegisterTargets", true).await
}

pub async fn deregister(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    change(cx, "DeregisterTargets", false).await
}

/// Register/DeregisterTargets: the group's targets, with the group's port where none is given.
async fn change(cx: &Ctx<'_>, op: &str, add: bool) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("TargetGroupArn")?.to_string();
    cx.allow(op, vec![arn.clone()])?;
    let port = group(cx, &arn)?.port;
    let targets = read_targets(cx, port)?;
    cx.elb.change_targets(&arn, &targets, add, true).await?;
    Ok(Xml::new())
}

/// A target, its state, and ELB's reason code and description.
type Row = (Target, &'static str, Option<(&'static str, String)>);

pub fn describe_health(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("TargetGroupArn")?.to_string();
    cx.allow("DescribeTargetHealth", vec![arn.clone()])?;
    let g = group(cx, &arn)?;
    let asked = if cx.p.structs("Targets").is_empty() {
        None
    } else {
        Some(read_targets(cx, g.port)?)
    };
    let used = !balancers_of(&cx.elb.snapshot(), &arn).is_empty();
    // The data plane keeps the health of registered and draining targets; a target it has
    // not seen yet (just registered) is initial.
    let known = cx.elb.health().of(&arn);
    let mut rows: Vec<Row> = Vec::new();
    for t in &g.targets {
        let h = known.iter().find(|(k, _)| k == t).map(|(_, h)| h.clone());
        let row = match (used, h) {
            (false, _) => (
                "unused",
                Some((
                    "Target.NotInUse",
                    "Target group is not configured to receive traffic from the load balancer"
                        .to_string(),
                )),
            ),
            (true, Some(h)) => (h.state.as_str(), h.reason()),
            (true, None) => (
                "initial",
                Some((
                    "Elb.RegistrationInProgress",
                    "Target registration is in progress".to_string(),
                )),
            ),
        };
        rows.push((t.clone(), row.0, row.1));
    }
    for (t, h) in known.iter().filter(|(_, h)| h.state == State::Draining) {
        rows.push((t.clone(), "draining", h.reason()));
    }
    if let Some(asked) = asked {
        let mut chosen = Vec::new();
        for t in asked {
            match rows.iter().find(|r| r.0 == t) {
                Some(r) => chosen.push(r.clone()),
                None => chosen.push((
                    t,
                    "unavailable",
                    Some((
                        "Target.NotRegistered",
                        "Target is not registered to the target group".to_string(),
                    )),
                )),
            }
        }
        rows = chosen;
    }
    let mut x = Xml::new();
    x.list(
        "TargetHealthDescriptions",
        &rows,
        |x, (t, state, reason)| {
            x.node("Target", |x| {
                x.leaf("Id", &t.id);
                x.leaf("Port", &t.port.to_string());
            });
            x.leaf(
                "HealthCheckPort",
                &if g.health.port == "traffic-port" {
                    t.port.to_string()
                } else {
                    g.health.port.clone()
                },
            );
            x.node("TargetHealth", |x| {
                x.leaf("State", state);
                if let Some((code, description)) = reason {
                    x.leaf("Reason", code);
                    x.leaf("Description", description);
                }
            });
        },
    );
    Ok(x)
}
