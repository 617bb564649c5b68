//! Services: a name in a namespace, the DNS records its instances get (private DNS
//! namespaces), and how their health is known.

use super::namespaces::{check_tags, dns_name_ok, find as find_namespace};
use super::{invalid, page, page_size, service_not_found, with_token};
use crate::model::{service_json, NamespaceType, Resource, Service, View};
use crate::{now, random_id, Discovery};
use gantry_api::servicediscovery::{
    CreateServiceRequest, DeleteServiceRequest, DnsConfig, GetServiceRequest, ListServicesRequest,
    RecordType, RoutingPolicy, ServiceFilterName,
};
use gantry_core::authz::Gate;
use gantry_core::ServiceError;
use serde_json::{json, Value};

/// The service with `id`, or ServiceNotFound.
pub(crate) fn find<'a>(view: &View<'a>, id: &str) -> Result<&'a Service, ServiceError> {
    view.service(id).ok_or_else(|| service_not_found(id))
}

/// Checks a service's DNS records as Route 53 would take them, and sets the routing default.
fn check_dns(mut dns: DnsConfig) -> Result<DnsConfig, ServiceError> {
    if dns.dns_records.is_empty() {
        return Err(invalid("DnsConfig needs at least one DnsRecord."));
    }
    let mut seen = Vec::new();
    for r in &dns.dns_records {
        if seen.contains(&r.r#type) {
            return Err(invalid(format!(
                "DnsRecords has two records of type {}.",
                r.r#type.as_str()
            )));
        }
        seen.push(r.r#type);
        if !(0..=2_147_483_647).contains(&r.ttl) {
            return Err(invalid(format!(
                "The TTL {} is not between 0 and 2147483647.",
                r.ttl
            )));
        }
    }
    if seen.contains(&RecordType::Cname) && seen.len() > 1 {
        return Err(invalid(
            "A CNAME record cannot be combined with other records.",
        ));
    }
    if seen.contains(&RecordType::Srv) && seen.contains(&RecordType::Cname) {
        return Err(invalid(
            "An SRV record cannot be combined with a CNAME record.",
        ));
    }
    let policy = dns.routing_policy.unwrap_or(RoutingPolicy::Multivalue);
    if policy == RoutingPolicy::Multivalue && seen.contains(&RecordType::Cname) {
        return Err(invalid(
            "The MULTIVALUE routing policy cannot be used with a CNAME record.",
        ));
    }
    dns.routing_policy = Some(policy);
    dns.namespace_id = None;
    Ok(dns)
}

impl Discovery {
    pub(crate) fn service_arn(&self, id: &str) -> String {
        self.arn(&format!("service/{id}"))
    }

    pub(crate) async fn create_service(
        &self,
        r: CreateServiceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        let namespace_id = r
            .namespace_id
            .clone()
            .or_else(|| r.dns_config.as_ref().and_then(|d| d.namespace_id.clone()))
            .ok_or_else(|| invalid("NamespaceId is required."))?;
        gate.authorize(
            "servicediscovery:CreateService",
            &[self.namespace_arn(&namespace_id)],
        )?;
        if r.name.len() > 127 || !dns_name_ok(&r.name) {
            return Err(invalid(format!(
                "The service name '{}' is not valid: DNS labels of letters, digits, '-' and '_', at most 127 characters.",
                r.name
            )));
        }
        if r.health_check_config.is_some() {
            return Err(invalid(
                "HealthCheckConfig (Route 53 health checks) is only for public DNS namespaces, which gantry does not have; use HealthCheckCustomConfig.",
            ));
        }
        let tags = r.tags.unwrap_or_default();
        check_tags(&tags)?;
        let dns = r.dns_config.map(check_dns).transpose()?;
        let id = format!("srv-{}", random_id(16));
        let arn = self.service_arn(&id);
        let service = self
            .update(|rows| {
                let view = View(rows.all());
                let ns = find_namespace(&view, &namespace_id)?;
                if ns.kind == NamespaceType::Http && dns.is_some() {
                    return Err(invalid(format!(
                        "The namespace {} is an HTTP namespace: its services have no DnsConfig.",
                        ns.id
                    )));
                }
                if let Some(old) = view
                    .services_in(&ns.id)
                    .find(|s| s.name.eq_ignore_ascii_case(&r.name))
                {
                    if old.creator_request_id.is_some()
                        && old.creator_request_id == r.creator_request_id
                    {
                        return Ok(old.clone());
                    }
                    return Err(ServiceError::new(
                        "ServiceAlreadyExists",
                        400,
                        format!(
                            "Service already exists: {} in {}: {}",
                            r.name, ns.id, old.id
                        ),
                    ));
                }
                let kind = if dns.is_some() { "DNS_HTTP" } else { "HTTP" };
                let service = Service {
                    id: id.clone(),
                    arn: arn.clone(),
                    name: r.name.clone(),
                    namespace_id: ns.id.clone(),
                    description: r.description.clone(),
                    dns: dns.clone(),
                    health_custom: r.health_check_custom_config.as_ref().map(|h| json!(h)),
                    kind: kind.to_string(),
                    created: now(),
                    creator_request_id: r.creator_request_id.clone(),
                    tags,
                    revision: 0,
                };
                rows.put(&id, Resource::Service(service.clone()));
                Ok(service)
            })
            .await?;
        Ok(json!({ "Service": service_json(&service, self.account(), 0, false) }))
    }

    pub(crate) fn get_service(
        &self,
        r: GetServiceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("servicediscovery:GetService", &[self.service_arn(&r.id)])?;
        let snap = self.snapshot();
        let view = View(&snap);
        let s = find(&view, &r.id)?;
        let count = view.instances(&s.id).count();
        Ok(json!({ "Service": service_json(s, self.account(), count, false) }))
    }

    pub(crate) fn list_services(
        &self,
        r: ListServicesRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("servicediscovery:ListServices", &["*".to_string()])?;
        let size = page_size(r.max_results, 100)?;
        let filters = r.filters.unwrap_or_default();
        let snap = self.snapshot();
        let view = View(&snap);
        let matching: Vec<&Service> = view
            .services()
            .filter(|s| {
                filters.iter().all(|f| {
                    let have = match f.name {
                        ServiceFilterName::NamespaceId => s.namespace_id.as_str(),
                        ServiceFilterName::ResourceOwner => self.account(),
                    };
                    f.values.iter().any(|v| v == have)
                })
            })
            .collect();
        let (items, next) = page(
            matching.into_iter().map(|s| {
                let count = view.instances(&s.id).count();
                let mut v = service_json(s, self.account(), count, true);
                // The summary names its records but not the namespace.
                if let Some(d) = v.get_mut("DnsConfig").and_then(Value::as_object_mut) {
                    d.remove("NamespaceId");
                }
                (s.id.as_str(), v)
            }),
            r.next_token.as_deref(),
            size,
        )?;
        Ok(with_token(json!({ "Services": items }), next))
    }

    pub(crate) async fn delete_service(
        &self,
        r: DeleteServiceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("servicediscovery:DeleteService", &[self.service_arn(&r.id)])?;
        self.update(|rows| {
            let view = View(rows.all());
            let s = find(&view, &r.id)?;
            if view.instances(&s.id).next().is_some() {
                return Err(ServiceError::new(
                    "ResourceInUse",
                    400,
                    format!(
                        "The service {} has registered instances: deregister them first.",
                        s.id
                    ),
                ));
            }
            let id = s.id.clone();
            rows.delete(&id);
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::servicediscovery::DnsRecord;

    fn dns(records: &[RecordType], policy: Option<RoutingPolicy>) -> DnsConfig {
        DnsConfig {
            namespace_id: Some("ns-x".into()),
            routing_policy: policy,
            dns_records: records
                .iter()
                .map(|t| DnsRecord {
                    r#type: *t,
                    ttl: 10,
                })
                .collect(),
        }
    }

    #[test]
    fn dns_configs_are_checked_and_defaulted() {
        let ok = check_dns(dns(&[RecordType::A, RecordType::Srv], None)).unwrap();
        assert_eq!(ok.routing_policy, Some(RoutingPolicy::Multivalue));
        assert_eq!(ok.namespace_id, None);
        assert!(check_dns(dns(&[], None)).is_err());
        assert!(check_dns(dns(&[RecordType::A, RecordType::A], None)).is_err());
        assert!(check_dns(dns(&[RecordType::Cname, RecordType::A], None)).is_err());
        assert!(check_dns(dns(&[RecordType::Cname], None)).is_err());
        assert!(check_dns(dns(&[RecordType::Cname], Some(RoutingPolicy::Weighted))).is_ok());
    }
}
