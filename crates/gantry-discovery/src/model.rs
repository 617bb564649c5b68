//! Cloud Map's records: namespaces, services, their instances and the operations that changed
//! them, one record kind keyed so that a service's instances sort together
//! (`<service id>/<instance id>`).

pub use gantry_api::servicediscovery::{DnsConfig, DnsRecord, RecordType, RoutingPolicy, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `HTTP` (found by DiscoverInstances only) or `DNS_PRIVATE` (also by name, through gantry's
/// DNS server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceType {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "DNS_PRIVATE")]
    DnsPrivate,
}

impl NamespaceType {
    pub fn as_str(self) -> &'static str {
        match self {
            NamespaceType::Http => "HTTP",
            NamespaceType::DnsPrivate => "DNS_PRIVATE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    pub id: String,
    pub arn: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: NamespaceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The VPC a private DNS namespace was created for (recorded; gantry has one network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc: Option<String>,
    /// The TTL of the zone's SOA record (private DNS namespaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soa_ttl: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_zone: Option<String>,
    pub created: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The record of type `kind` a service's instances get, if it has one.
pub fn record(dns: &DnsConfig, kind: RecordType) -> Option<&DnsRecord> {
    dns.dns_records.iter().find(|r| r.r#type == kind)
}

/// `WEIGHTED` answers one instance at random; `MULTIVALUE` (the default) up to eight.
pub fn weighted(dns: &DnsConfig) -> bool {
    dns.routing_policy == Some(RoutingPolicy::Weighted)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub id: String,
    pub arn: String,
    pub name: String,
    pub namespace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsConfig>,
    /// `HealthCheckCustomConfig` as given: instances' health is what
    /// UpdateInstanceCustomHealthStatus says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_custom: Option<Value>,
    /// `HTTP`, `DNS_HTTP` or `DNS`.
    #[serde(rename = "type")]
    pub kind: String,
    pub created: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_request_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Counts every change to the service's instances (DiscoverInstances' InstancesRevision).
    #[serde(default)]
    pub revision: i64,
}

/// The attributes Cloud Map gives meaning to.
pub const IPV4: &str = "AWS_INSTANCE_IPV4";
pub const IPV6: &str = "AWS_INSTANCE_IPV6";
pub const PORT: &str = "AWS_INSTANCE_PORT";
pub const CNAME: &str = "AWS_INSTANCE_CNAME";
pub const INIT_HEALTH: &str = "AWS_INIT_HEALTH_STATUS";

/// One registered instance of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub service_id: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_request_id: Option<String>,
    /// The custom health status (services with a custom health check): `HEALTHY` or
    /// `UNHEALTHY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

impl Instance {
    /// `HEALTHY`, `UNHEALTHY`, or `UNKNOWN` for a service without health checks.
    pub fn health_status(&self) -> &str {
        self.health.as_deref().unwrap_or("UNKNOWN")
    }

    /// Whether DNS and `HEALTHY` filters count it healthy: an instance of a service without
    /// health checks always is.
    pub fn is_healthy(&self) -> bool {
        self.health_status() != "UNHEALTHY"
    }
}

/// An asynchronous change, as GetOperation reports it (gantry's complete before they answer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    /// `CREATE_NAMESPACE`, `DELETE_NAMESPACE`, `REGISTER_INSTANCE`, `DEREGISTER_INSTANCE`.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    /// `NAMESPACE`, `SERVICE`, `INSTANCE` to the ids.
    pub targets: BTreeMap<String, String>,
    pub created: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Resource {
    Namespace(Namespace),
    Service(Service),
    Instance(Instance),
    Operation(Operation),
}

pub const RESOURCES: gantry_core::Kind<Resource> = gantry_core::Kind::new("resources");

/// The key of an instance record.
pub fn instance_key(service_id: &str, instance_id: &str) -> String {
    format!("{service_id}/{instance_id}")
}

/// The key of an operation record.
pub fn operation_key(id: &str) -> String {
    format!("op/{id}")
}

/// The records as one snapshot sees them, with the lookups the operations and DNS need.
pub struct View<'a>(pub &'a BTreeMap<String, Resource>);

impl<'a> View<'a> {
    pub fn namespaces(&self) -> impl Iterator<Item = &'a Namespace> {
        self.0.values().filter_map(|r| match r {
            Resource::Namespace(n) => Some(n),
            _ => None,
        })
    }

    pub fn services(&self) -> impl Iterator<Item = &'a Service> {
        self.0.values().filter_map(|r| match r {
            Resource::Service(s) => Some(s),
            _ => None,
        })
    }

    pub fn namespace(&self, id: &str) -> Option<&'a Namespace> {
        match self.0.get(id) {
            Some(Resource::Namespace(n)) => Some(n),
            _ => None,
        }
    }

    pub fn service(&self, id: &str) -> Option<&'a Service> {
        match self.0.get(id) {
            Some(Resource::Service(s)) => Some(s),
            _ => None,
        }
    }

    /// A service's instances, in id order.
    pub fn instances(&self, service_id: &str) -> impl Iterator<Item = &'a Instance> {
        let from = format!("{service_id}/");
        self.0
            .range(from.clone()..)
            .take_while(move |(k, _)| k.starts_with(&from))
            .filter_map(|(_, r)| match r {
                Resource::Instance(i) => Some(i),
                _ => None,
            })
    }

    pub fn services_in(&self, namespace_id: &'a str) -> impl Iterator<Item = &'a Service> + 'a {
        self.services()
            .filter(move |s| s.namespace_id == namespace_id)
    }

    /// The namespace a name is under (`HttpName`, which is the namespace's name).
    pub fn namespace_named(&self, name: &str) -> Option<&'a Namespace> {
        self.namespaces()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    pub fn operations(&self) -> impl Iterator<Item = &'a Operation> {
        self.0
            .range("op/".to_string()..)
            .map_while(|(k, r)| match r {
                Resource::Operation(o) if k.starts_with("op/") => Some(o),
                _ => None,
            })
    }
}

/// A namespace's properties, as GetNamespace and ListNamespaces write them.
fn properties(n: &Namespace) -> Value {
    let mut p = json!({"HttpProperties": {"HttpName": n.name}});
    if n.kind == NamespaceType::DnsPrivate {
        p["DnsProperties"] = json!({
            "HostedZoneId": n.hosted_zone,
            "SOA": {"TTL": n.soa_ttl.unwrap_or(15)},
        });
    }
    p
}

/// A namespace on the wire; `summary` leaves out what only GetNamespace says.
pub fn namespace_json(n: &Namespace, account: &str, services: usize, summary: bool) -> Value {
    let mut v = json!({
        "Id": n.id,
        "Arn": n.arn,
        "ResourceOwner": account,
        "Name": n.name,
        "Type": n.kind.as_str(),
        "ServiceCount": services,
        "Properties": properties(n),
        "CreateDate": n.created,
    });
    if let Some(d) = &n.description {
        v["Description"] = json!(d);
    }
    if !summary {
        if let Some(c) = &n.creator_request_id {
            v["CreatorRequestId"] = json!(c);
        }
    }
    v
}

/// A service on the wire; `summary` leaves out what only GetService says.
pub fn service_json(s: &Service, account: &str, instances: usize, summary: bool) -> Value {
    let mut v = json!({
        "Id": s.id,
        "Arn": s.arn,
        "ResourceOwner": account,
        "Name": s.name,
        "Type": s.kind,
        "InstanceCount": instances,
        "CreateDate": s.created,
        "CreatedByAccount": account,
    });
    if !summary {
        v["NamespaceId"] = json!(s.namespace_id);
        if let Some(c) = &s.creator_request_id {
            v["CreatorRequestId"] = json!(c);
        }
    }
    if let Some(d) = &s.description {
        v["Description"] = json!(d);
    }
    if let Some(d) = &s.dns {
        v["DnsConfig"] = json!(d);
    }
    if let Some(h) = &s.health_custom {
        v["HealthCheckCustomConfig"] = h.clone();
    }
    v
}

pub fn operation_json(o: &Operation, account: &str) -> Value {
    json!({
        "Id": o.id,
        "OwnerAccount": account,
        "Type": o.kind,
        "Status": o.status,
        "CreateDate": o.created,
        "UpdateDate": o.created,
        "Targets": o.targets,
    })
}
