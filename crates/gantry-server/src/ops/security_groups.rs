//! Security groups for awsvpc tasks, through gantry's own operations (AWS JSON 1.0,
//! `X-Amz-Target: GantryV1.<Operation>`, SigV4 signing name `gantry`): PutSecurityGroup,
//! DescribeSecurityGroups, DeleteSecurityGroup. A task admits traffic from members of its own
//! groups, and what its groups' ingress rules allow; the agent enforces it with iptables.

use crate::ops::network::detail;
use crate::state::{records, State, TaskRecord};
use crate::Server;
use gantry_api::agent::{Allow, Firewall, SecurityGroup};
use gantry_api::{decode, ApiError, ErrorCode};
use gantry_store::Txn;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The target prefix of gantry's own operations.
pub const PREFIX: &str = "GantryV1";

fn valid_id(id: &str) -> bool {
    id.strip_prefix("sg-").is_some_and(|r| {
        !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn valid_cidr(c: &str) -> bool {
    let Some((ip, bits)) = c.split_once('/') else {
        return false;
    };
    ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
}

fn check(g: &SecurityGroup) -> Result<(), ApiError> {
    if !valid_id(&g.group_id) {
        return Err(ApiError::invalid(format!(
            "Invalid 'groupId' {:?}: expected sg- followed by letters and digits.",
            g.group_id
        )));
    }
    if g.ingress.len() > 60 {
        return Err(ApiError::invalid("Invalid 'ingress': at most 60 rules."));
    }
    for r in &g.ingress {
        if !matches!(r.protocol.as_str(), "tcp" | "udp" | "all") {
            return Err(ApiError::invalid(format!(
                "Invalid 'ingress.protocol' {:?}: use tcp, udp or all.",
                r.protocol
            )));
        }
        if r.from_port > r.to_port {
            return Err(ApiError::invalid(
                "Invalid 'ingress': fromPort is above toPort.",
            ));
        }
        match (&r.source_group, &r.cidr) {
            (Some(s), None) if valid_id(s) => {}
            (None, Some(c)) if valid_cidr(c) => {}
            _ => return Err(ApiError::invalid(
                "Invalid 'ingress': give exactly one of sourceGroup (sg-…) or cidr (a.b.c.d/n).",
            )),
        }
    }
    Ok(())
}

/// The addresses of the unstopped tasks in a group.
fn members(st: &State, group: &str) -> BTreeSet<String> {
    st.tasks
        .values()
        .filter(|t| !t.is_stopped() && t.security_groups.iter().any(|g| g == group))
        .flat_map(|t| t.task.attachments.iter().flatten())
        .filter_map(|a| detail(a, "privateIPv4Address"))
        .collect()
}

/// What a task admits, or `None` when it is in no group (nothing is enforced).
pub fn firewall(st: &State, t: &TaskRecord) -> Option<Firewall> {
    if t.security_groups.is_empty() || t.task.attachments.as_ref().is_none_or(|a| a.is_empty()) {
        return None;
    }
    let mut allow = BTreeSet::new();
    let everything = |source: String| Allow {
        protocol: "all".into(),
        from_port: 0,
        to_port: 65535,
        source,
    };
    for g in &t.security_groups {
        for ip in members(st, g) {
            allow.insert(everything(format!("{ip}/32")));
        }
        for r in st
            .security_groups
            .get(g)
            .map(|g| g.ingress.clone())
            .unwrap_or_default()
        {
            let sources: Vec<String> = match (&r.source_group, &r.cidr) {
                (Some(s), _) => members(st, s)
                    .into_iter()
                    .map(|ip| format!("{ip}/32"))
                    .collect(),
                (_, Some(c)) => vec![c.clone()],
                _ => Vec::new(),
            };
            for source in sources {
                allow.insert(Allow {
                    protocol: r.protocol.clone(),
                    from_port: r.from_port,
                    to_port: r.to_port,
                    source,
                });
            }
        }
    }
    Some(Firewall {
        allow: allow.into_iter().collect(),
        pool: st.awsvpc_pool.cidr(),
    })
}

/// Wakes every instance that runs a task in a security group (its rules may have changed).
pub fn bump_firewalled(st: &mut State) {
    let instances: BTreeSet<String> = st
        .tasks
        .values()
        .filter(|t| !t.is_stopped() && !t.security_groups.is_empty())
        .map(|t| t.instance.clone())
        .collect();
    for i in instances {
        st.bump(&i);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeRequest {
    #[serde(default)]
    group_ids: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteRequest {
    group_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupsResponse {
    security_groups: Vec<SecurityGroup>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupResponse {
    security_group: SecurityGroup,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::server(e.to_string()))
}

/// The ARN a security group's authorization names.
fn group_arn(server: &Server, id: &str) -> String {
    format!(
        "arn:aws:ec2:{}:{}:security-group/{id}",
        server.config.region, server.config.account_id
    )
}

/// Runs one of gantry's own operations, each authorized as `gantry:<Operation>`.
pub async fn dispatch(
    server: &Server,
    op: &str,
    body: &[u8],
    gate: &gantry_core::Gate<'_>,
) -> Result<Vec<u8>, gantry_core::ServiceError> {
    let action = format!("gantry:{op}");
    Ok(match op {
        "PutSecurityGroup" => {
            let g: SecurityGroup = decode(body)?;
            gate.authorize(&action, &[group_arn(server, &g.group_id)])?;
            check(&g)?;
            let saved = server
                .write(move |st| {
                    let txn = records::SECURITY_GROUPS.put(Txn::new(), &g.group_id, &g);
                    st.security_groups.insert(g.group_id.clone(), g.clone());
                    bump_firewalled(st);
                    Ok((g, txn))
                })
                .await?;
            encode(&GroupResponse {
                security_group: saved,
            })?
        }
        "DescribeSecurityGroups" => {
            let req: DescribeRequest = decode(body)?;
            let named: Vec<String> = match &req.group_ids {
                Some(ids) => ids.iter().map(|id| group_arn(server, id)).collect(),
                None => vec!["*".into()],
            };
            gate.authorize(&action, &named)?;
            let groups = server.read(|st| {
                st.security_groups
                    .values()
                    .filter(|g| {
                        req.group_ids
                            .as_ref()
                            .is_none_or(|ids| ids.contains(&g.group_id))
                    })
                    .cloned()
                    .collect()
            })?;
            encode(&GroupsResponse {
                security_groups: groups,
            })?
        }
        "DeleteSecurityGroup" => {
            let req: DeleteRequest = decode(body)?;
            gate.authorize(&action, &[group_arn(server, &req.group_id)])?;
            let removed = server
                .write(move |st| {
                    let g = st.security_groups.remove(&req.group_id).ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::ResourceNotFoundException,
                            format!("No security group {}.", req.group_id),
                        )
                    })?;
                    bump_firewalled(st);
                    Ok((
                        g,
                        records::SECURITY_GROUPS.delete(Txn::new(), &req.group_id),
                    ))
                })
                .await?;
            encode(&GroupResponse {
                security_group: removed,
            })?
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::UnknownOperationException,
                format!("Unknown operation {PREFIX}.{other}"),
            )
            .into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::agent::IngressRule;

    #[test]
    fn rules_are_checked() {
        let rule = |protocol: &str, sg: Option<&str>, cidr: Option<&str>| IngressRule {
            protocol: protocol.into(),
            from_port: 80,
            to_port: 80,
            source_group: sg.map(String::from),
            cidr: cidr.map(String::from),
        };
        let g = |rules: Vec<IngressRule>| SecurityGroup {
            group_id: "sg-web".into(),
            description: None,
            ingress: rules,
        };
        assert!(check(&g(vec![
            rule("tcp", Some("sg-a"), None),
            rule("udp", None, Some("10.0.0.0/8"))
        ]))
        .is_ok());
        assert!(check(&g(vec![rule("icmp", Some("sg-a"), None)])).is_err());
        assert!(check(&g(vec![rule("tcp", Some("sg-a"), Some("10.0.0.0/8"))])).is_err());
        assert!(check(&g(vec![rule("tcp", None, Some("10.0.0.0/33"))])).is_err());
        assert!(check(&SecurityGroup {
            group_id: "web".into(),
            ..SecurityGroup::default()
        })
        .is_err());
    }
}
