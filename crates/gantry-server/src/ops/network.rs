//! awsvpc networking on the control plane: `networkConfiguration` validation, subnets (each a
//! /24 from gantry's pool, created on first use), and each task's elastic network interface
//! (an address, a MAC and an id, shown as the task's attachment).

use crate::state::{records, State, SubnetRecord};
use gantry_api::model::{
    AssignPublicIp, Attachment, AwsVpcConfiguration, KeyValuePair, NetworkConfiguration,
};
use gantry_api::ApiError;
use gantry_store::Txn;
use std::collections::BTreeSet;

/// The address pool subnets come from: 10.213.0.0/16, one /24 per subnet. It avoids Docker's
/// own ranges (172.17.0.0/16 for the default bridge, 172.18–31.0.0/16 and 192.168.0.0/16 for
/// the networks it creates).
pub const POOL_PREFIX: &str = "10.213";

/// Checks `networkConfiguration` for a task of an awsvpc task definition.
pub fn validate(
    nc: Option<&NetworkConfiguration>,
    fargate: bool,
) -> Result<AwsVpcConfiguration, ApiError> {
    let Some(c) = nc.and_then(|n| n.awsvpc_configuration.clone()) else {
        return Err(ApiError::invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    };
    if c.subnets.is_empty() || c.subnets.len() > 16 {
        return Err(ApiError::invalid("Invalid 'networkConfiguration.awsvpcConfiguration.subnets': give between 1 and 16 subnets."));
    }
    for s in &c.subnets {
        let ok = s.strip_prefix("subnet-").is_some_and(|r| {
            !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !ok {
            return Err(ApiError::invalid(format!(
                "Invalid subnet id {s:?}: expected subnet- followed by letters and digits."
            )));
        }
    }
    let groups = c.security_groups.as_deref().unwrap_or_default();
    if groups.len() > 5 {
        return Err(ApiError::invalid(
            "Invalid 'networkConfiguration.awsvpcConfiguration.securityGroups': at most 5.",
        ));
    }
    for g in groups {
        let ok = g.strip_prefix("sg-").is_some_and(|r| {
            !r.is_empty() && r.len() <= 32 && r.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !ok {
            return Err(ApiError::invalid(format!(
                "Invalid security group id {g:?}: expected sg- followed by letters and digits."
            )));
        }
    }
    if c.assign_public_ip == Some(AssignPublicIp::Enabled) && !fargate {
        return Err(ApiError::invalid(
            "Assign public IP is not supported for this launch type.",
        ));
    }
    Ok(c)
}

/// The subnet's record, created (with the next free /24 of the pool) on first use.
fn subnet(st: &mut State, id: &str, txn: &mut Txn) -> Result<SubnetRecord, ApiError> {
    if let Some(s) = st.subnets.get(id) {
        return Ok(s.clone());
    }
    let used: BTreeSet<u8> = st.subnets.values().map(|s| s.octet).collect();
    let octet = (0..=255u8)
        .find(|o| !used.contains(o))
        .ok_or_else(|| ApiError::invalid("The subnet pool (256 subnets) is exhausted."))?;
    let rec = SubnetRecord {
        id: id.to_string(),
        octet,
    };
    *txn = records::SUBNETS.put(std::mem::take(txn), id, &rec);
    st.subnets.insert(id.to_string(), rec.clone());
    Ok(rec)
}

/// A new interface for a task: the first subnet, its lowest free address.
pub fn allocate(
    st: &mut State,
    c: &AwsVpcConfiguration,
    txn: &mut Txn,
) -> Result<Attachment, ApiError> {
    let id = c.subnets.first().cloned().unwrap_or_default();
    let sub = subnet(st, &id, txn)?;
    let taken: BTreeSet<String> = st
        .tasks
        .values()
        .filter(|t| !t.is_stopped())
        .flat_map(|t| t.task.attachments.iter().flatten())
        .filter_map(|a| detail(a, "privateIPv4Address"))
        .collect();
    let host = (2..=254u8)
        .find(|h| !taken.contains(&sub.address(*h)))
        .ok_or_else(|| ApiError::invalid(format!("Subnet {id} has no free addresses.")))?;
    let ip = sub.address(host);
    let eni: String = uuid::Uuid::new_v4().simple().to_string()[..17].to_string();
    let mac = format!("02:42:0a:d5:{:02x}:{:02x}", sub.octet, host);
    let kv = |n: &str, v: String| KeyValuePair {
        name: Some(n.into()),
        value: Some(v),
    };
    let attachment = Attachment {
        id: Some(uuid::Uuid::new_v4().to_string()),
        r#type: Some("ElasticNetworkInterface".into()),
        status: Some("ATTACHED".into()),
        details: Some(vec![
            kv("subnetId", id),
            kv("networkInterfaceId", format!("eni-{eni}")),
            kv("macAddress", mac),
            kv(
                "privateDnsName",
                format!("ip-{}.local", ip.replace('.', "-")),
            ),
            kv("privateIPv4Address", ip),
            kv("subnetGatewayIpv4Address", format!("{}/24", sub.address(1))),
        ]),
    };
    Ok(attachment)
}

/// A named detail of an attachment.
pub fn detail(a: &Attachment, name: &str) -> Option<String> {
    a.details
        .iter()
        .flatten()
        .find(|d| d.name.as_deref() == Some(name))
        .and_then(|d| d.value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(subnets: &[&str]) -> NetworkConfiguration {
        NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: subnets.iter().map(|s| s.to_string()).collect(),
                security_groups: None,
                assign_public_ip: None,
            }),
        }
    }

    #[test]
    fn validation() {
        assert!(validate(None, false).is_err());
        assert!(validate(Some(&cfg(&[])), false).is_err());
        assert!(validate(Some(&cfg(&["subnet-1"])), false).is_ok());
        assert!(validate(Some(&cfg(&["net-1"])), false).is_err());
    }

    #[test]
    fn subnets_and_addresses() {
        let mut st = State::default();
        let c = validate(Some(&cfg(&["subnet-a"])), false).unwrap();
        let mut txn = Txn::new();
        let a = allocate(&mut st, &c, &mut txn).unwrap();
        assert_eq!(
            detail(&a, "privateIPv4Address").as_deref(),
            Some("10.213.0.2")
        );
        assert_eq!(
            detail(&a, "subnetGatewayIpv4Address").as_deref(),
            Some("10.213.0.1/24")
        );
        assert!(!txn.ops.is_empty());
        let c2 = validate(Some(&cfg(&["subnet-b"])), false).unwrap();
        let b = allocate(&mut st, &c2, &mut Txn::new()).unwrap();
        assert_eq!(
            detail(&b, "privateIPv4Address").as_deref(),
            Some("10.213.1.2")
        );
    }
}
