//! Cloud Map's operations, over AWS JSON 1.1 (the AWS CLI) and RPC v2 CBOR (boto3), each
//! authorized as `servicediscovery:<Operation>` on the namespace or service it names.
//!
//! - `namespaces`: Create{Http,PrivateDns}Namespace, Get/List/DeleteNamespace.
//! - `services`: Create/Get/List/DeleteService.
//! - `instances`: Register/DeregisterInstance, Get/ListInstances, DiscoverInstances(Revision),
//!   GetInstancesHealthStatus, UpdateInstanceCustomHealthStatus.
//! - `operations`: GetOperation, ListOperations, and the tags of namespaces and services.
//!
//! Changes that Cloud Map runs asynchronously complete before gantry answers, so their
//! operations are `SUCCESS` at once.

mod instances;
mod namespaces;
mod operations;
mod services;

pub(crate) use operations::record_operation;

use crate::Discovery;
use base64::Engine;
use gantry_api::servicediscovery::{Operation, SIGNING_NAME, TARGET_PREFIX, TIMESTAMP_MEMBERS};
use gantry_core::json::{body, decode, encode};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, ServiceEntry, ServiceError};
use std::sync::Arc;

/// Cloud Map's name for a request it cannot take.
const INVALID: &str = "InvalidInput";

pub(crate) fn invalid(m: impl Into<String>) -> ServiceError {
    ServiceError::new(INVALID, 400, m)
}

pub(crate) fn namespace_not_found(id: &str) -> ServiceError {
    ServiceError::new(
        "NamespaceNotFound",
        400,
        format!("Namespace not found: {id}"),
    )
}

pub(crate) fn service_not_found(id: &str) -> ServiceError {
    ServiceError::new("ServiceNotFound", 400, format!("Service not found: {id}"))
}

pub(crate) fn instance_not_found(id: &str) -> ServiceError {
    ServiceError::new("InstanceNotFound", 400, format!("Instance not found: {id}"))
}

/// How many items a page holds: `MaxResults` within `1..=max`, `max` when absent.
pub(crate) fn page_size(n: Option<i32>, max: usize) -> Result<usize, ServiceError> {
    match n {
        None => Ok(max),
        Some(n) if n < 1 || n as usize > max => Err(invalid(format!(
            "MaxResults must be between 1 and {max}; it is {n}."
        ))),
        Some(n) => Ok(n as usize),
    }
}

/// One page of `items` (in key order) after the token's key, and the token of the next.
pub(crate) fn page<'i, T: 'i>(
    items: impl Iterator<Item = (&'i str, T)>,
    token: Option<&str>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("The NextToken is not valid."))?,
        ),
    };
    let mut out = Vec::new();
    let mut last = None;
    let mut more = false;
    for (key, item) in items {
        if after.as_deref().is_some_and(|a| key <= a) {
            continue;
        }
        if out.len() == size {
            more = true;
            break;
        }
        last = Some(key);
        out.push(item);
    }
    let next = match (more, last) {
        (true, Some(k)) => Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)),
        _ => None,
    };
    Ok((out, next))
}

/// A list's answer with its `NextToken`, when there is a next page.
pub(crate) fn with_token(mut answer: serde_json::Value, next: Option<String>) -> serde_json::Value {
    if let Some(t) = next {
        answer["NextToken"] = serde_json::json!(t);
    }
    answer
}

struct Service(Arc<Discovery>);

impl Dispatch for Service {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let b = body(&call)?;
            let d = &self.0;
            let g = &call.gate;
            let v = match call.operation {
                "CreateHttpNamespace" => d.create_http_namespace(decode(b, INVALID)?, g).await?,
                "CreatePrivateDnsNamespace" => {
                    d.create_private_dns_namespace(decode(b, INVALID)?, g)
                        .await?
                }
                "GetNamespace" => d.get_namespace(decode(b, INVALID)?, g)?,
                "ListNamespaces" => d.list_namespaces(decode(b, INVALID)?, g)?,
                "DeleteNamespace" => d.delete_namespace(decode(b, INVALID)?, g).await?,
                "CreateService" => d.create_service(decode(b, INVALID)?, g).await?,
                "GetService" => d.get_service(decode(b, INVALID)?, g)?,
                "ListServices" => d.list_services(decode(b, INVALID)?, g)?,
                "DeleteService" => d.delete_service(decode(b, INVALID)?, g).await?,
                "RegisterInstance" => d.register_instance(decode(b, INVALID)?, g).await?,
                "DeregisterInstance" => d.deregister_instance(decode(b, INVALID)?, g).await?,
                "GetInstance" => d.get_instance(decode(b, INVALID)?, g)?,
                "ListInstances" => d.list_instances(decode(b, INVALID)?, g)?,
                "DiscoverInstances" => d.discover_instances(decode(b, INVALID)?, g)?,
                "DiscoverInstancesRevision" => d.discover_revision(decode(b, INVALID)?, g)?,
                "GetInstancesHealthStatus" => d.health_status(decode(b, INVALID)?, g)?,
                "UpdateInstanceCustomHealthStatus" => {
                    d.update_custom_health(decode(b, INVALID)?, g).await?
                }
                "GetOperation" => d.get_operation(decode(b, INVALID)?, g)?,
                "ListOperations" => d.list_operations(decode(b, INVALID)?, g)?,
                "TagResource" => d.tag(decode(b, INVALID)?, g).await?,
                "UntagResource" => d.untag(decode(b, INVALID)?, g).await?,
                "ListTagsForResource" => d.list_tags(decode(b, INVALID)?, g)?,
                op if Operation::from_name(op).is_some() => {
                    return Err(ServiceError::not_served(
                        "UnsupportedOperation",
                        "Cloud Map",
                        op,
                    ))
                }
                op => return Err(ServiceError::unknown_operation(TARGET_PREFIX, op)),
            };
            encode(&v)
        })
    }
}

/// Cloud Map's entry: `Route53AutoNaming_v20170314` in AWS JSON 1.1 and RPC v2 CBOR, signed
/// for `servicediscovery`, in the region's records.
pub fn entry(discovery: &Arc<Discovery>) -> ServiceEntry {
    ServiceEntry::json_1_1(
        SIGNING_NAME,
        TARGET_PREFIX,
        discovery.region(),
        Arc::new(Service(discovery.clone())),
    )
    .with_cbor(TARGET_PREFIX, TIMESTAMP_MEMBERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_resume_after_their_token() {
        let keys = ["a", "b", "c", "d", "e"];
        let items = || keys.iter().map(|k| (*k, k.to_string()));
        let (first, next) = page(items(), None, 2).unwrap();
        assert_eq!(first, ["a", "b"]);
        let (second, next) = page(items(), next.as_deref(), 2).unwrap();
        assert_eq!(second, ["c", "d"]);
        let (third, next) = page(items(), next.as_deref(), 2).unwrap();
        assert_eq!(third, ["e"]);
        assert_eq!(next, None);
        assert!(page(items(), Some("!!"), 2).is_err());
        assert!(page_size(Some(0), 100).is_err());
        assert_eq!(page_size(None, 100).unwrap(), 100);
    }
}
