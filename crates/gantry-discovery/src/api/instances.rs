//! Instances: what a service's tasks (or anything else) register, their health, and how
//! clients find them (DiscoverInstances, and DNS for private DNS namespaces).

use super::service_not_found;
use super::services::find as find_service;
use super::{
    instance_not_found, invalid, namespace_not_found, page, page_size, record_operation, with_token,
};
use crate::model::{instance_key, record, Instance, RecordType, Resource, Service, View};
use crate::model::{CNAME, INIT_HEALTH, IPV4, IPV6, PORT};
use crate::Discovery;
use gantry_api::servicediscovery::{
    DeregisterInstanceRequest, DiscoverInstancesRequest, DiscoverInstancesRevisionRequest,
    GetInstanceRequest, GetInstancesHealthStatusRequest, HealthStatusFilter, ListInstancesRequest,
    RegisterInstanceRequest, UpdateInstanceCustomHealthStatusRequest,
};
use gantry_core::authz::Gate;
use gantry_core::ServiceError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

fn check_instance_id(id: &str) -> Result<(), ServiceError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_/:.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "The instance id '{id}' is not valid: 1 to 64 letters, digits and _/:.@-."
        )))
    }
}

/// Checks an instance's attributes against what its service's records need.
fn check_attributes(s: &Service, a: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if a.len() > 30 {
        return Err(invalid("An instance can have at most 30 attributes."));
    }
    if let Some((k, _)) = a
        .iter()
        .find(|(k, v)| k.is_empty() || k.len() > 255 || v.len() > 1024)
    {
        return Err(invalid(format!(
            "The attribute '{k}' is not valid: keys have 1 to 255 characters, values at most 1024."
        )));
    }
    let need = |key: &str, why: &str| -> Result<&str, ServiceError> {
        a.get(key)
            .map(String::as_str)
            .ok_or_else(|| invalid(format!("{key} is required: {why}")))
    };
    if let Some(v) = a.get(IPV4) {
        v.parse::<Ipv4Addr>()
            .map_err(|_| invalid(format!("{IPV4} '{v}' is not an IPv4 address.")))?;
    }
    if let Some(v) = a.get(IPV6) {
        v.parse::<Ipv6Addr>()
            .map_err(|_| invalid(format!("{IPV6} '{v}' is not an IPv6 address.")))?;
    }
    if let Some(v) = a.get(PORT) {
        v.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format!("{PORT} '{v}' is not a port (1 to 65535).")))?;
    }
    if let Some(dns) = &s.dns {
        if record(dns, RecordType::A).is_some() {
            need(IPV4, "the service has an A record")?;
        }
        if record(dns, RecordType::Aaaa).is_some() {
            need(IPV6, "the service has an AAAA record")?;
        }
        if record(dns, RecordType::Cname).is_some() {
            need(CNAME, "the service has a CNAME record")?;
        }
        if record(dns, RecordType::Srv).is_some() {
            need(PORT, "the service has an SRV record")?;
            if !a.contains_key(IPV4) && !a.contains_key(IPV6) {
                return Err(invalid(format!(
                    "{IPV4} or {IPV6} is required: the service has an SRV record."
                )));
            }
        }
    }
    match a.get(INIT_HEALTH).map(String::as_str) {
        None => Ok(()),
        Some(_) if s.health_custom.is_none() => Err(invalid(format!(
            "{INIT_HEALTH} is only for services with a HealthCheckCustomConfig."
        ))),
        Some("HEALTHY" | "UNHEALTHY") => Ok(()),
        Some(v) => Err(invalid(format!(
            "{INIT_HEALTH} '{v}' is neither HEALTHY nor UNHEALTHY."
        ))),
    }
}

/// Bumps the revision DiscoverInstances reports for a service whose instances changed.
fn bump(rows: &mut gantry_core::Rows<'_, Resource>, service_id: &str) {
    if let Some(Resource::Service(s)) = rows.get(service_id) {
        let mut s = s.clone();
        s.revision += 1;
        rows.put(service_id, Resource::Service(s));
    }
}

fn instance_json(i: &Instance) -> Value {
    let mut v = json!({ "Id": i.id, "Attributes": i.attributes });
    if let Some(c) = &i.creator_request_id {
        v["CreatorRequestId"] = json!(c);
    }
    v
}

impl Discovery {
    /// Registers (or replaces) an instance; the operation's id.
    pub(crate) async fn put_instance(
        &self,
        service_id: &str,
        instance_id: &str,
        attributes: BTreeMap<String, String>,
        creator_request_id: Option<String>,
    ) -> Result<String, ServiceError> {
        check_instance_id(instance_id)?;
        self.update(|rows| {
            let view = View(rows.all());
            let s = find_service(&view, service_id)?;
            check_attributes(s, &attributes)?;
            let key = instance_key(service_id, instance_id);
            let old = match rows.get(&key) {
                Some(Resource::Instance(i)) => Some(i.clone()),
                _ => None,
            };
            let health = s.health_custom.as_ref().map(|_| {
                attributes
                    .get(INIT_HEALTH)
                    .cloned()
                    .or_else(|| old.as_ref().and_then(|o| o.health.clone()))
                    .unwrap_or_else(|| "HEALTHY".into())
            });
            let new = Instance {
                service_id: service_id.to_string(),
                id: instance_id.to_string(),
                attributes,
                creator_request_id,
                health,
            };
            if old.as_ref() != Some(&new) {
                rows.put(&key, Resource::Instance(new));
                bump(rows, service_id);
            }
            Ok(record_operation(
                rows,
                "REGISTER_INSTANCE",
                &[("SERVICE", service_id), ("INSTANCE", instance_id)],
            ))
        })
        .await
    }

    /// Removes an instance: the operation's id, or None when it was not registered.
    pub(crate) async fn remove_instance(
        &self,
        service_id: &str,
        instance_id: &str,
    ) -> Result<Option<String>, ServiceError> {
        self.update(|rows| {
            let view = View(rows.all());
            find_service(&view, service_id)?;
            let key = instance_key(service_id, instance_id);
            if rows.get(&key).is_none() {
                return Ok(None);
            }
            rows.delete(&key);
            bump(rows, service_id);
            Ok(Some(record_operation(
                rows,
                "DEREGISTER_INSTANCE",
                &[("SERVICE", service_id), ("INSTANCE", instance_id)],
            )))
        })
        .await
    }

    pub(crate) async fn register_instance(
        &self,
        r: RegisterInstanceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:RegisterInstance",
            &[self.service_arn(&r.service_id)],
        )?;
        let op = self
            .put_instance(
                &r.service_id,
                &r.instance_id,
                r.attributes,
                r.creator_request_id,
            )
            .await?;
        Ok(json!({ "OperationId": op }))
    }

    pub(crate) async fn deregister_instance(
        &self,
        r: DeregisterInstanceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:DeregisterInstance",
            &[self.service_arn(&r.service_id)],
        )?;
        match self.remove_instance(&r.service_id, &r.instance_id).await? {
            Some(op) => Ok(json!({ "OperationId": op })),
            None => Err(instance_not_found(&r.instance_id)),
        }
    }

    pub(crate) fn get_instance(
        &self,
        r: GetInstanceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:GetInstance",
            &[self.service_arn(&r.service_id)],
        )?;
        let snap = self.snapshot();
        let view = View(&snap);
        find_service(&view, &r.service_id)?;
        match snap.get(&instance_key(&r.service_id, &r.instance_id)) {
            Some(Resource::Instance(i)) => Ok(json!({
                "ResourceOwner": self.account(),
                "Instance": instance_json(i),
            })),
            _ => Err(instance_not_found(&r.instance_id)),
        }
    }

    pub(crate) fn list_instances(
        &self,
        r: ListInstancesRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:ListInstances",
            &[self.service_arn(&r.service_id)],
        )?;
        let size = page_size(r.max_results, 100)?;
        let snap = self.snapshot();
        let view = View(&snap);
        find_service(&view, &r.service_id)?;
        let (items, next) = page(
            view.instances(&r.service_id).map(|i| {
                let mut v = instance_json(i);
                if let Some(o) = v.as_object_mut() {
                    o.remove("CreatorRequestId");
                }
                (i.id.as_str(), v)
            }),
            r.next_token.as_deref(),
            size,
        )?;
        Ok(with_token(
            json!({ "Instances": items, "ResourceOwner": self.account() }),
            next,
        ))
    }

    /// The service `namespace`/`service` names, as DiscoverInstances finds it, once the
    /// caller may `servicediscovery:<action>` on it (on every service when it is not found,
    /// so a refusal does not tell what exists).
    fn named<'a>(
        &self,
        view: &View<'a>,
        namespace: &str,
        service: &str,
        action: &str,
        gate: &Gate<'_>,
    ) -> Result<&'a Service, ServiceError> {
        let found = view
            .namespace_named(namespace)
            .ok_or_else(|| namespace_not_found(namespace))
            .and_then(|ns| {
                view.services_in(&ns.id)
                    .find(|s| s.name.eq_ignore_ascii_case(service))
                    .ok_or_else(|| service_not_found(service))
            });
        let arn = match &found {
            Ok(s) => s.arn.clone(),
            Err(_) => self.service_arn("*"),
        };
        gate.authorize(&format!("servicediscovery:{action}"), &[arn])?;
        found
    }

    pub(crate) fn discover_instances(
        &self,
        r: DiscoverInstancesRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        let snap = self.snapshot();
        let view = View(&snap);
        let s = self.named(
            &view,
            &r.namespace_name,
            &r.service_name,
            "DiscoverInstances",
            gate,
        )?;
        let max = match r.max_results {
            None => 100,
            Some(n) if (1..=1000).contains(&n) => n as usize,
            Some(n) => {
                return Err(invalid(format!(
                    "MaxResults must be between 1 and 1000; it is {n}."
                )))
            }
        };
        let matches = |i: &Instance, params: &BTreeMap<String, String>| {
            params.iter().all(|(k, v)| i.attributes.get(k) == Some(v))
        };
        let query = r.query_parameters.unwrap_or_default();
        let mut picked: Vec<&Instance> = view
            .instances(&s.id)
            .filter(|i| matches(i, &query))
            .collect();
        if let Some(optional) = r.optional_parameters.filter(|o| !o.is_empty()) {
            if picked.iter().any(|i| matches(i, &optional)) {
                picked.retain(|i| matches(i, &optional));
            }
        }
        let healthy = |i: &&Instance| i.is_healthy();
        match r.health_status.unwrap_or(HealthStatusFilter::Healthy) {
            HealthStatusFilter::Healthy => picked.retain(healthy),
            HealthStatusFilter::Unhealthy => picked.retain(|i| !i.is_healthy()),
            HealthStatusFilter::All => {}
            HealthStatusFilter::HealthyOrElseAll => {
                if picked.iter().any(healthy) {
                    picked.retain(healthy);
                }
            }
        }
        let ns_name = view
            .namespace(&s.namespace_id)
            .map(|n| n.name.as_str())
            .unwrap_or_default();
        let instances: Vec<Value> = picked
            .into_iter()
            .take(max)
            .map(|i| {
                json!({
                    "InstanceId": i.id,
                    "NamespaceName": ns_name,
                    "ServiceName": s.name,
                    "HealthStatus": i.health_status(),
                    "Attributes": i.attributes,
                })
            })
            .collect();
        Ok(json!({ "Instances": instances, "InstancesRevision": s.revision }))
    }

    pub(crate) fn discover_revision(
        &self,
        r: DiscoverInstancesRevisionRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        let snap = self.snapshot();
        let view = View(&snap);
        let s = self.named(
            &view,
            &r.namespace_name,
            &r.service_name,
            "DiscoverInstancesRevision",
            gate,
        )?;
        Ok(json!({ "InstancesRevision": s.revision }))
    }

    pub(crate) fn health_status(
        &self,
        r: GetInstancesHealthStatusRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:GetInstancesHealthStatus",
            &[self.service_arn(&r.service_id)],
        )?;
        let size = page_size(r.max_results, 100)?;
        let snap = self.snapshot();
        let view = View(&snap);
        find_service(&view, &r.service_id)?;
        let wanted = r.instances.unwrap_or_default();
        if let Some(missing) = wanted
            .iter()
            .find(|w| !snap.contains_key(&instance_key(&r.service_id, w)))
        {
            return Err(instance_not_found(missing));
        }
        let (items, next) = page(
            view.instances(&r.service_id)
                .filter(|i| wanted.is_empty() || wanted.contains(&i.id))
                .map(|i| (i.id.as_str(), (i.id.clone(), i.health_status().to_string()))),
            r.next_token.as_deref(),
            size,
        )?;
        let status: BTreeMap<String, String> = items.into_iter().collect();
        Ok(with_token(json!({ "Status": status }), next))
    }

    pub(crate) async fn update_custom_health(
        &self,
        r: UpdateInstanceCustomHealthStatusRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:UpdateInstanceCustomHealthStatus",
            &[self.service_arn(&r.service_id)],
        )?;
        self.update(|rows| {
            let view = View(rows.all());
            let s = find_service(&view, &r.service_id)?;
            if s.health_custom.is_none() {
                return Err(ServiceError::new(
                    "CustomHealthNotFound",
                    400,
                    format!("The service {} has no HealthCheckCustomConfig.", s.id),
                ));
            }
            let key = instance_key(&r.service_id, &r.instance_id);
            let Some(Resource::Instance(i)) = rows.get(&key) else {
                return Err(instance_not_found(&r.instance_id));
            };
            let status = r.status.as_str().to_string();
            if i.health.as_deref() != Some(status.as_str()) {
                let mut i = i.clone();
                i.health = Some(status);
                rows.put(&key, Resource::Instance(i));
                bump(rows, &r.service_id);
            }
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_api::servicediscovery::{DnsConfig, DnsRecord};

    fn service(records: &[RecordType], custom: bool) -> Service {
        Service {
            id: "srv-1".into(),
            arn: "arn".into(),
            name: "web".into(),
            namespace_id: "ns-1".into(),
            description: None,
            dns: Some(DnsConfig {
                namespace_id: None,
                routing_policy: None,
                dns_records: records
                    .iter()
                    .map(|t| DnsRecord {
                        r#type: *t,
                        ttl: 10,
                    })
                    .collect(),
            }),
            health_custom: custom.then(|| json!({})),
            kind: "DNS_HTTP".into(),
            created: 0.0,
            creator_request_id: None,
            tags: Vec::new(),
            revision: 0,
        }
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attributes_must_give_what_the_records_need() {
        let a = service(&[RecordType::A], false);
        assert!(check_attributes(&a, &attrs(&[(IPV4, "10.0.0.1")])).is_ok());
        assert!(check_attributes(&a, &attrs(&[])).is_err());
        assert!(check_attributes(&a, &attrs(&[(IPV4, "10.0.0")])).is_err());
        let srv = service(&[RecordType::Srv], false);
        assert!(check_attributes(&srv, &attrs(&[(IPV4, "10.0.0.1")])).is_err());
        assert!(check_attributes(&srv, &attrs(&[(IPV4, "10.0.0.1"), (PORT, "80")])).is_ok());
        assert!(check_attributes(&srv, &attrs(&[(IPV4, "10.0.0.1"), (PORT, "0")])).is_err());
        assert!(
            check_attributes(&a, &attrs(&[(IPV4, "10.0.0.1"), (INIT_HEALTH, "HEALTHY")])).is_err()
        );
        let custom = service(&[RecordType::A], true);
        assert!(check_attributes(
            &custom,
            &attrs(&[(IPV4, "10.0.0.1"), (INIT_HEALTH, "UNHEALTHY")])
        )
        .is_ok());
        assert!(check_attributes(
            &custom,
            &attrs(&[(IPV4, "10.0.0.1"), (INIT_HEALTH, "MAYBE")])
        )
        .is_err());
        assert!(check_instance_id("0123abc").is_ok());
        assert!(check_instance_id("a b").is_err());
        assert!(check_instance_id(&"x".repeat(65)).is_err());
    }
}
