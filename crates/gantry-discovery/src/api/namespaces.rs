//! Namespaces: HTTP ones (found through DiscoverInstances) and private DNS ones (also by
//! name, through gantry's DNS server). Public DNS namespaces need a registrar's zone, which
//! gantry does not have: CreatePublicDnsNamespace is refused as not served.

use super::{invalid, namespace_not_found, page, page_size, record_operation, with_token};
use crate::model::{namespace_json, Namespace, NamespaceType, Resource, View};
use crate::{now, random_id, Discovery};
use gantry_api::servicediscovery::{
    CreateHttpNamespaceRequest, CreatePrivateDnsNamespaceRequest, DeleteNamespaceRequest,
    GetNamespaceRequest, ListNamespacesRequest, NamespaceFilterName, Tag,
};
use gantry_core::authz::Gate;
use gantry_core::ServiceError;
use serde_json::{json, Value};

/// The SOA TTL of a private DNS namespace created without one, as Cloud Map's default.
const DEFAULT_SOA_TTL: i64 = 15;

/// Whether `name` is a DNS name Cloud Map takes for a namespace: labels of letters, digits,
/// `-` and `_`, at most 63 characters each and 253 in all.
pub(crate) fn dns_name_ok(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub(crate) fn check_tags(tags: &[Tag]) -> Result<(), ServiceError> {
    if tags.len() > 50 {
        return Err(ServiceError::new(
            "TooManyTagsException",
            400,
            "A resource can have at most 50 tags.",
        ));
    }
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.is_empty() || t.key.len() > 128 || t.value.len() > 256)
    {
        return Err(invalid(format!(
            "The tag '{}' is not valid: keys have 1 to 128 characters, values at most 256.",
            t.key
        )));
    }
    Ok(())
}

/// The namespace with `id`, or NamespaceNotFound.
pub(crate) fn find<'a>(view: &View<'a>, id: &str) -> Result<&'a Namespace, ServiceError> {
    view.namespace(id).ok_or_else(|| namespace_not_found(id))
}

/// What a new namespace is: its kind and the properties of that kind.
struct NewNamespace {
    name: String,
    kind: NamespaceType,
    description: Option<String>,
    creator_request_id: Option<String>,
    tags: Vec<Tag>,
    vpc: Option<String>,
    soa_ttl: Option<i64>,
}

impl Discovery {
    pub(crate) fn namespace_arn(&self, id: &str) -> String {
        self.arn(&format!("namespace/{id}"))
    }

    pub(crate) async fn create_http_namespace(
        &self,
        r: CreateHttpNamespaceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:CreateHttpNamespace",
            &[self.namespace_arn("*")],
        )?;
        if r.name.is_empty()
            || r.name.len() > 1024
            || !r.name.bytes().all(|b| (b'!'..=b'~').contains(&b))
        {
            return Err(invalid(format!(
                "The namespace name '{}' is not valid: 1 to 1024 printable characters without spaces.",
                r.name
            )));
        }
        self.create_namespace(NewNamespace {
            name: r.name,
            kind: NamespaceType::Http,
            description: r.description,
            creator_request_id: r.creator_request_id,
            tags: r.tags.unwrap_or_default(),
            vpc: None,
            soa_ttl: None,
        })
        .await
    }

    pub(crate) async fn create_private_dns_namespace(
        &self,
        r: CreatePrivateDnsNamespaceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:CreatePrivateDnsNamespace",
            &[self.namespace_arn("*")],
        )?;
        if !dns_name_ok(&r.name) {
            return Err(invalid(format!(
                "The namespace name '{}' is not a valid DNS name.",
                r.name
            )));
        }
        if r.vpc.is_empty() {
            return Err(invalid("Vpc is required for a private DNS namespace."));
        }
        let soa_ttl = r.properties.map(|p| p.dns_properties.soa.ttl);
        if let Some(t) = soa_ttl.filter(|t| !(0..=2_147_483_647).contains(t)) {
            return Err(invalid(format!(
                "The SOA TTL {t} is not between 0 and 2147483647."
            )));
        }
        self.create_namespace(NewNamespace {
            name: r.name.trim_end_matches('.').to_string(),
            kind: NamespaceType::DnsPrivate,
            description: r.description,
            creator_request_id: r.creator_request_id,
            tags: r.tags.unwrap_or_default(),
            vpc: Some(r.vpc),
            soa_ttl: Some(soa_ttl.unwrap_or(DEFAULT_SOA_TTL)),
        })
        .await
    }

    async fn create_namespace(&self, n: NewNamespace) -> Result<Value, ServiceError> {
        check_tags(&n.tags)?;
        let id = format!("ns-{}", random_id(16));
        let arn = self.namespace_arn(&id);
        let op = self
            .update(|rows| {
                let view = View(rows.all());
                if let Some(old) = view
                    .namespaces()
                    .find(|o| o.name.eq_ignore_ascii_case(&n.name))
                {
                    // A retry of the same request (same CreatorRequestId) gets the operation
                    // that created it; another request for the name is refused.
                    if old.creator_request_id.is_some()
                        && old.creator_request_id == n.creator_request_id
                    {
                        if let Some(op) = view.operations().find(|o| {
                            o.kind == "CREATE_NAMESPACE"
                                && o.targets.get("NAMESPACE") == Some(&old.id)
                        }) {
                            return Ok(op.id.clone());
                        }
                    }
                    return Err(ServiceError::new(
                        "NamespaceAlreadyExists",
                        400,
                        format!("Namespace with name {} already exists: {}", n.name, old.id),
                    ));
                }
                let hosted_zone = (n.kind == NamespaceType::DnsPrivate)
                    .then(|| format!("Z{}", random_id(13).to_ascii_uppercase()));
                rows.put(
                    &id,
                    Resource::Namespace(Namespace {
                        id: id.clone(),
                        arn: arn.clone(),
                        name: n.name,
                        kind: n.kind,
                        description: n.description,
                        vpc: n.vpc,
                        soa_ttl: n.soa_ttl,
                        hosted_zone,
                        created: now(),
                        creator_request_id: n.creator_request_id,
                        tags: n.tags,
                    }),
                );
                Ok(record_operation(
                    rows,
                    "CREATE_NAMESPACE",
                    &[("NAMESPACE", &id)],
                ))
            })
            .await?;
        Ok(json!({ "OperationId": op }))
    }

    pub(crate) fn get_namespace(
        &self,
        r: GetNamespaceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:GetNamespace",
            &[self.namespace_arn(&r.id)],
        )?;
        let snap = self.snapshot();
        let view = View(&snap);
        let n = find(&view, &r.id)?;
        let services = view.services_in(&n.id).count();
        Ok(json!({ "Namespace": namespace_json(n, self.account(), services, false) }))
    }

    pub(crate) fn list_namespaces(
        &self,
        r: ListNamespacesRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("servicediscovery:ListNamespaces", &["*".to_string()])?;
        let size = page_size(r.max_results, 100)?;
        let filters = r.filters.unwrap_or_default();
        let snap = self.snapshot();
        let view = View(&snap);
        let mut matching = Vec::new();
        'each: for n in view.namespaces() {
            for f in &filters {
                let condition = f.condition.map(|c| c.as_str()).unwrap_or("EQ");
                let have = match f.name {
                    NamespaceFilterName::Type => n.kind.as_str(),
                    NamespaceFilterName::Name | NamespaceFilterName::HttpName => n.name.as_str(),
                    NamespaceFilterName::ResourceOwner => self.account(),
                };
                let ok = match condition {
                    "EQ" | "IN" => f.values.iter().any(|v| v == have),
                    "BEGINS_WITH" => f.values.iter().any(|v| have.starts_with(v.as_str())),
                    other => {
                        return Err(invalid(format!(
                            "The condition {other} is not valid for the filter {}.",
                            f.name.as_str()
                        )))
                    }
                };
                if !ok {
                    continue 'each;
                }
            }
            matching.push(n);
        }
        let (items, next) = page(
            matching.into_iter().map(|n| {
                let count = view.services_in(&n.id).count();
                (
                    n.id.as_str(),
                    namespace_json(n, self.account(), count, true),
                )
            }),
            r.next_token.as_deref(),
            size,
        )?;
        Ok(with_token(json!({ "Namespaces": items }), next))
    }

    pub(crate) async fn delete_namespace(
        &self,
        r: DeleteNamespaceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:DeleteNamespace",
            &[self.namespace_arn(&r.id)],
        )?;
        let op = self
            .update(|rows| {
                let view = View(rows.all());
                let n = find(&view, &r.id)?;
                if view.services_in(&n.id).next().is_some() {
                    return Err(ServiceError::new(
                        "ResourceInUse",
                        400,
                        format!("The namespace {} has services: delete them first.", n.id),
                    ));
                }
                let id = n.id.clone();
                rows.delete(&id);
                Ok(record_operation(
                    rows,
                    "DELETE_NAMESPACE",
                    &[("NAMESPACE", &id)],
                ))
            })
            .await?;
        Ok(json!({ "OperationId": op }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_are_checked_label_by_label() {
        for ok in ["local", "svc.cluster.local", "a_b.c-d", "local."] {
            assert!(dns_name_ok(ok), "{ok}");
        }
        for bad in ["", "a..b", "-a.b", "a b", &"x".repeat(64), "é.local"] {
            assert!(!dns_name_ok(bad), "{bad}");
        }
    }
}
