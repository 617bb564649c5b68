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
    Rule(Rule),
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

    /// How long an `lb_cookie` stickiness cookie lasts, when the group has it on.
    pub fn sticky_cookie_seconds(&self) -> Option<u32> {
        (self.attribute("stickiness.enabled") == Some("true")
            && self.attribute("stickiness.type") == Some("lb_cookie"))
        .then(|| {
            self.attribute("stickiness.lb_cookie.duration_seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(86_400)
        })
    }

    /// Whether a network load balancer's group holds a client to one target by its address
    /// (`stickiness.type` `source_ip`).
    pub fn sticky_source_ip(&self) -> bool {
        self.attribute("stickiness.enabled") == Some("true")
            && self.attribute("stickiness.type") == Some("source_ip")
    }

    /// `slow_start.duration_seconds`, when on: how long a newly healthy target takes to get
    /// its full share of requests.
    pub fn slow_start_seconds(&self) -> Option<u32> {
        self.attribute("slow_start.duration_seconds")
            .and_then(|v| v.parse().ok())
            .filter(|s| *s > 0)
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
    if protocol == Protocol::Tcp {
        a.insert("stickiness.type".into(), "source_ip".into());
    }
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
    /// HTTP for application load balancers (HTTPS when `tls` is set), TCP for network ones.
    pub protocol: Protocol,
    pub actions: Vec<Action>,
    /// An HTTPS listener's certificates and policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

/// What an HTTPS listener terminates TLS with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// ACM certificate ARNs; the first is the default certificate.
    pub certificates: Vec<String>,
    pub ssl_policy: String,
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

/// The load balancers whose listeners (or their rules) forward to `group`.
pub fn balancers_of(all: &BTreeMap<String, Resource>, group: &str) -> Vec<String> {
    let mut v: Vec<String> = all
        .values()
        .filter_map(|r| match r {
            Resource::Listener(l) if l.groups().any(|g| g == group) => Some(l.balancer.clone()),
            Resource::Rule(r) if forwards_to(&r.actions, group) => match all.get(&r.listener) {
                Some(Resource::Listener(l)) => Some(l.balancer.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn forwards_to(actions: &[Action], group: &str) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Forward { groups } if groups.iter().any(|g| g.0 == group)))
}

/// The target groups any listener or rule forwards to.
pub fn groups_in_use(all: &BTreeMap<String, Resource>) -> std::collections::BTreeSet<&str> {
    let mut out = std::collections::BTreeSet::new();
    for r in all.values() {
        let actions = match r {
            Resource::Listener(l) => &l.actions,
            Resource::Rule(r) => &r.actions,
            _ => continue,
        };
        for a in actions {
            if let Action::Forward { groups } = a {
                out.extend(groups.iter().map(|g| g.0.as_str()));
            }
        }
    }
    out
}

/// A listener rule: conditions, all of which a request must meet, and what to do then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub arn: String,
    pub listener: String,
    pub priority: u32,
    pub conditions: Vec<Condition>,
    pub actions: Vec<Action>,
}

/// One condition of a rule; a list of values matches when any one does. Values may use `*`
/// (any run of characters) and `?` (any one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Condition {
    /// The path, case-sensitive.
    Path(Vec<String>),
    /// The Host header (without its port), case-insensitive.
    Host(Vec<String>),
    /// A header's value, case-insensitive.
    Header(String, Vec<String>),
    /// Key/value pairs of the query string (a pair without key matches any key's value),
    /// case-insensitive.
    Query(Vec<(Option<String>, String)>),
}

/// What rules look at in a request.
#[derive(Clone, Copy)]
pub struct RequestFacts<'a> {
    pub path: &'a str,
    pub host: &'a str,
    pub query: &'a str,
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

impl Condition {
    pub fn matches(&self, r: &RequestFacts<'_>) -> bool {
        match self {
            Condition::Path(v) => v.iter().any(|p| wildcard(p, r.path, false)),
            Condition::Host(v) => {
                let host = r.host.rsplit_once(':').map_or(r.host, |(h, _)| h);
                v.iter().any(|p| wildcard(p, host, true))
            }
            Condition::Header(name, v) => {
                (r.header)(name).is_some_and(|h| v.iter().any(|p| wildcard(p, h, true)))
            }
            Condition::Query(pairs) => {
                let given: Vec<(&str, &str)> = r
                    .query
                    .split('&')
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
                    .collect();
                pairs.iter().any(|(k, v)| {
                    given.iter().any(|(gk, gv)| {
                        k.as_deref().is_none_or(|k| wildcard(k, gk, true)) && wildcard(v, gv, true)
                    })
                })
            }
        }
    }
}

/// ELB's wildcards: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |c: char| {
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    let p: Vec<char> = pattern.chars().map(fold).collect();
    let t: Vec<char> = text.chars().map(fold).collect();
    // Greedy matching with backtracking to the last star: linear in practice.
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == '*' {
        i += 1;
    }
    i == p.len()
}

/// A listener's rules, by priority.
pub fn rules_of(all: &BTreeMap<String, Resource>, listener: &str) -> Vec<Rule> {
    let mut v: Vec<Rule> = all
        .values()
        .filter_map(|r| match r {
            Resource::Rule(r) if r.listener == listener => Some(r.clone()),
            _ => None,
        })
        .collect();
    v.sort_by_key(|r| r.priority);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_elb_documents() {
        assert!(wildcard("/api/*", "/api/items/1", false));
        assert!(!wildcard("/api/*", "/web/api/x", false));
        assert!(wildcard("*.example.com", "www.EXAMPLE.com", true));
        assert!(!wildcard("/API/*", "/api/x", false));
        assert!(wildcard("/img/??.png", "/img/ab.png", false));
        assert!(!wildcard("/img/??.png", "/img/abc.png", false));
        assert!(wildcard("*", "", false));
    }

    #[test]
    fn conditions_read_paths_hosts_headers_and_queries() {
        let header = |n: &str| (n.eq_ignore_ascii_case("user-agent")).then_some("Mobile Safari");
        let r = RequestFacts {
            path: "/api/v1",
            host: "shop.example.com:8080",
            query: "version=2&debug",
            header: &header,
        };
        assert!(Condition::Path(vec!["/web/*".into(), "/api/*".into()]).matches(&r));
        assert!(Condition::Host(vec!["shop.*".into()]).matches(&r));
        assert!(Condition::Header("User-Agent".into(), vec!["*mobile*".into()]).matches(&r));
        assert!(!Condition::Header("X-Other".into(), vec!["*".into()]).matches(&r));
        assert!(Condition::Query(vec![(Some("version".into()), "2".into())]).matches(&r));
        assert!(Condition::Query(vec![(None, "2".into())]).matches(&r));
        assert!(!Condition::Query(vec![(Some("version".into()), "3".into())]).matches(&r));
    }
}
