//! ELB's resources as gantry keeps them: one record kind, [`Resource`], keyed by ARN, so that a
//! change touching a load balancer and its listeners is one transaction.

use gantry_core::record::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every ELB resource of a region, by ARN.
pub const RESOURCES: Kind<Resource> = Kind::new("resources");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Resource {
    Balancer(Balancer),
    Group(TargetGroup),
    Listener(Listener),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BalancerType {
    Application,
    Network,
}

impl BalancerType {
    pub fn as_str(self) -> &'static str {
        match self {
            BalancerType::Application => "application",
            BalancerType::Network => "network",
        }
    }

    /// The part of ARNs that names the type (`app`, `net`).
    pub fn arn_part(self) -> &'static str {
        match self {
            BalancerType::Application => "app",
            BalancerType::Network => "net",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balancer {
    pub arn: String,
    pub name: String,
    pub kind: BalancerType,
    pub scheme: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// Where its listeners listen.
    pub address: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Http,
    Tcp,
}

impl Protocol {
    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "HTTP" => Some(Protocol::Http),
            "TCP" => Some(Protocol::Tcp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Tcp => "TCP",
        }
    }
}

/// How a target group checks its targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    pub enabled: bool,
    pub protocol: Protocol,
    /// A port, or `traffic-port` (the target's own).
    pub port: String,
    pub path: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    /// HTTP codes that count as healthy: `200`, `200,202`, `200-299`.
    pub matcher: String,
}

impl HealthCheck {
    /// ELB's defaults for a target group of `protocol`.
    pub fn defaults(protocol: Protocol) -> HealthCheck {
        HealthCheck {
            enabled: true,
            protocol,
            port: "traffic-port".into(),
            path: "/".into(),
            interval: 30,
            timeout: if protocol == Protocol::Http { 5 } else { 10 },
            healthy: 5,
            unhealthy: 2,
            matcher: "200".into(),
        }
    }
}

/// A registered target: an IP address (target type `ip`) and its port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub id: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroup {
    pub arn: String,
    pub name: String,
    pub protocol: Protocol,
    pub port: u16,
    pub target_type: String,
    pub health: HealthCheck,
    pub attributes: BTreeMap<String, String>,
    pub targets: Vec<Target>,
    pub tags: Vec<Tag>,
}

impl TargetGroup {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// `deregistration_delay.timeout_seconds` (300 by default).
    pub fn deregistration_delay(&self) -> u32 {
        self.attribute("deregistration_delay.timeout_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(300)
    }

    pub fn least_outstanding(&self) -> bool {
        self.attribute("load_balancing.algorithm.type") == Some("least_outstanding_requests")
    }
}

/// The attributes a target group starts with, as ELB lists them.
pub fn default_attributes(protocol: Protocol) -> BTreeMap<String, String> {
    let mut a: BTreeMap<String, String> = [
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if protocol == Protocol::Http {
        for (k, v) in [
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "86400"),
            ("slow_start.duration_seconds", "0"),
            ("load_balancing.algorithm.type", "round_robin"),
        ] {
            a.insert(k.into(), v.into());
        }
    }
    a
}

/// What a listener does with a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// To target groups, by weight.
    Forward { groups: Vec<(String, u32)> },
    FixedResponse {
        status: u16,
        content_type: Option<String>,
        body: Option<String>,
    },
    Redirect {
        protocol: String,
        host: String,
        port: String,
        path: String,
        query: String,
        /// `HTTP_301` or `HTTP_302`.
        status: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub arn: String,
    pub balancer: String,
    pub port: u16,
    pub protocol: Protocol,
    pub actions: Vec<Action>,
}

impl Listener {
    /// The target groups its actions forward to.
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().flat_map(|a| match a {
            Action::Forward { groups } => groups.iter().map(|g| g.0.as_str()).collect(),
            _ => Vec::new(),
        })
    }
}

/// The load balancers whose listeners forward to `group`.
pub fn balancers_of(all: &BTreeMap<String, Resource>, group: &str) -> Vec<String> {
    let mut v: Vec<String> = all
        .values()
        .filter_map(|r| match r {
            Resource::Listener(l) if l.groups().any(|g| g == group) => Some(l.balancer.clone()),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}
