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

/// The default address pool subnets come from: 10.213.0.0/16, one /24 per subnet. It avoids
/// Docker's own ranges (172.17.0.0/16 for the default bridge, 172.18–31.0.0/16 and
/// 192.168.0.0/16 for the networks it creates).
pub const DEFAULT_POOL: &str = "10.213.0.0/16";

/// A CIDR as (first address, prefix length), if `s` is one.
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok().filter(|b| *b <= 32)?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Some((u32::from(ip) & mask, bits))
}

fn overlaps((a, al): (u32, u8), (b, bl): (u32, u8)) -> bool {
    let bits = al.min(bl);
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    a & mask == b & mask
}

/// The range awsvpc subnets take their /24s from (`--awsvpc-pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    base: u32,
    bits: u8,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            base: u32::from_be_bytes([10, 213, 0, 0]),
            bits: 16,
        }
    }
}

impl Pool {
    /// A pool from a CIDR of /8 to /24 whose address is its first (`10.213.0.0/16`).
    pub fn parse(s: &str) -> Result<Pool, String> {
        let (ip, _) = s
            .split_once('/')
            .ok_or_else(|| format!("awsvpc pool {s:?}: not a CIDR"))?;
        let (base, bits) = parse_cidr(s).ok_or_else(|| format!("awsvpc pool {s:?}: not a CIDR"))?;
        if !(8..=24).contains(&bits) {
            return Err(format!("awsvpc pool {s:?}: give a prefix from /8 to /24"));
        }
        if ip.parse::<std::net::Ipv4Addr>().map(u32::from) != Ok(base) {
            return Err(format!(
                "awsvpc pool {s:?}: the address must be the range's first"
            ));
        }
        Ok(Pool { base, bits })
    }

    pub fn cidr(&self) -> String {
        format!("{}/{}", std::net::Ipv4Addr::from(self.base), self.bits)
    }

    /// The first address of each /24 of the pool, in order.
    pub fn subnets(&self) -> impl Iterator<Item = u32> + '_ {
        let n = 1u32 << (24 - self.bits);
        (0..n).map(move |i| self.base + (i << 8))
    }
}

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
    let used: BTreeSet<u32> = st.subnets.values().map(|s| s.base()).collect();
    // Ranges other networks hold on the engines of live instances.
    let held: Vec<(u32, u8)> = st
        .instances
        .values()
        .filter(|i| i.status() != "INACTIVE")
        .flat_map(|i| i.held_ranges.iter().filter_map(|c| parse_cidr(c)))
        .collect();
    let pool = st.awsvpc_pool;
    let network = pool
        .subnets()
        .find(|n| !used.contains(n) && !held.iter().any(|h| overlaps(*h, (*n, 24))))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "The awsvpc pool {} has no free /24 left (other networks on the hosts' engines hold some).",
                pool.cidr()
            ))
        })?;
    let rec = SubnetRecord {
        id: id.to_string(),
        octet: network.to_be_bytes()[2],
        network: Some(network),
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
    let [a, b, c, _] = sub.base().to_be_bytes();
    let mac = format!("02:42:{a:02x}:{b:02x}:{c:02x}:{host:02x}");
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
/// An awsvpc task's own address (its ENI's `privateIPv4Address`).
pub fn task_ip(t: &gantry_api::model::Task) -> Option<String> {
    t.attachments
        .iter()
        .flatten()
        .find_map(|a| detail(a, "privateIPv4Address"))
}

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

    #[test]
    fn pools_parse_and_split_into_24s() {
        let p = Pool::parse("10.50.0.0/22").unwrap();
        let nets: Vec<String> = p
            .subnets()
            .map(|n| std::net::Ipv4Addr::from(n).to_string())
            .collect();
        assert_eq!(nets, ["10.50.0.0", "10.50.1.0", "10.50.2.0", "10.50.3.0"]);
        assert_eq!(Pool::parse(DEFAULT_POOL).unwrap(), Pool::default());
        for bad in [
            "10.0.0.0",
            "10.0.0.0/25",
            "10.0.0.0/7",
            "10.0.1.0/16",
            "x/16",
            "10.0.0.0/33",
        ] {
            assert!(Pool::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets_skip_ranges_other_networks_hold() {
        let mut st = State::default();
        st.awsvpc_pool = Pool::parse("10.60.0.0/23").unwrap();
        // Another installation's network holds 10.60.0.0/24 on an agent's engine.
        let mut rec: crate::state::InstanceRecord = serde_json::from_value(serde_json::json!({
            "cluster": "c", "id": "i", "instance": {}, "held_ranges": ["10.60.0.0/24", "172.17.0.0/16"]
        }))
        .unwrap();
        rec.has_agent = true;
        st.instances.insert("i".into(), rec);
        let a = allocate(
            &mut st,
            &validate(Some(&cfg(&["subnet-a"])), false).unwrap(),
            &mut Txn::new(),
        )
        .unwrap();
        assert_eq!(
            detail(&a, "privateIPv4Address").as_deref(),
            Some("10.60.1.2")
        );
        // The pool has no other /24: the next subnet is refused with a reason.
        let e = allocate(
            &mut st,
            &validate(Some(&cfg(&["subnet-b"])), false).unwrap(),
            &mut Txn::new(),
        )
        .unwrap_err();
        assert!(e.message.contains("10.60.0.0/23"), "{}", e.message);
        // A wider held range covers the whole pool.
        assert!(overlaps(
            (u32::from_be_bytes([10, 0, 0, 0]), 8),
            (u32::from_be_bytes([10, 60, 1, 0]), 24)
        ));
        assert!(!overlaps(
            (u32::from_be_bytes([10, 61, 0, 0]), 16),
            (u32::from_be_bytes([10, 60, 1, 0]), 24)
        ));
    }
}
