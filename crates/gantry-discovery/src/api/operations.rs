//! Operations (what GetOperation reports about a change) and the tags of namespaces and
//! services.

use super::namespaces::check_tags;
use super::{invalid, with_token};
use crate::model::{operation_json, operation_key, Operation, Resource, Tag, View};
use crate::{now, random_id, Discovery};
use gantry_api::servicediscovery::{
    FilterCondition, GetOperationRequest, ListOperationsRequest, ListTagsForResourceRequest,
    OperationFilterName, TagResourceRequest, UntagResourceRequest,
};
use gantry_core::authz::Gate;
use gantry_core::{Rows, ServiceError};
use serde_json::{json, Value};

/// How many operations are kept; the oldest go first (Cloud Map keeps them for a while too).
const KEPT_OPERATIONS: usize = 1000;

/// Records a completed operation on `targets` (`NAMESPACE`, `SERVICE`, `INSTANCE` to ids),
/// dropping the oldest past [`KEPT_OPERATIONS`]; its id.
pub(crate) fn record_operation(
    rows: &mut Rows<'_, Resource>,
    kind: &str,
    targets: &[(&str, &str)],
) -> String {
    let id = format!("{}-{}", random_id(32), random_id(8));
    let ops: Vec<(f64, String)> = View(rows.all())
        .operations()
        .map(|o| (o.created, o.id.clone()))
        .collect();
    if ops.len() >= KEPT_OPERATIONS {
        if let Some((_, oldest)) = ops.iter().min_by(|a, b| a.0.total_cmp(&b.0)) {
            rows.delete(&operation_key(oldest));
        }
    }
    rows.put(
        &operation_key(&id),
        Resource::Operation(Operation {
            id: id.clone(),
            kind: kind.to_string(),
            status: "SUCCESS".into(),
            targets: targets
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            created: now(),
        }),
    );
    id
}

fn operation_matches(
    o: &Operation,
    f: &gantry_api::servicediscovery::OperationFilter,
) -> Result<bool, ServiceError> {
    let condition = f.condition.unwrap_or(FilterCondition::Eq);
    if f.name == OperationFilterName::UpdateDate {
        let bounds: Vec<f64> = f
            .values
            .iter()
            .map(|v| v.parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| invalid("UPDATE_DATE values are epoch seconds."))?;
        return match (condition, bounds.as_slice()) {
            (FilterCondition::Between, [from, to]) => Ok(*from <= o.created && o.created <= *to),
            _ => Err(invalid("UPDATE_DATE takes BETWEEN with two values.")),
        };
    }
    let have = match f.name {
        OperationFilterName::NamespaceId => o.targets.get("NAMESPACE").map(String::as_str),
        OperationFilterName::ServiceId => o.targets.get("SERVICE").map(String::as_str),
        OperationFilterName::Status => Some(o.status.as_str()),
        OperationFilterName::Type => Some(o.kind.as_str()),
        OperationFilterName::UpdateDate => None,
    };
    match condition {
        FilterCondition::Eq | FilterCondition::In => {
            Ok(have.is_some_and(|h| f.values.iter().any(|v| v == h)))
        }
        c => Err(invalid(format!(
            "The condition {} is not valid for the filter {}.",
            c.as_str(),
            f.name.as_str()
        ))),
    }
}

impl Discovery {
    pub(crate) fn get_operation(
        &self,
        r: GetOperationRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("servicediscovery:GetOperation", &["*".to_string()])?;
        match self.snapshot().get(&operation_key(&r.operation_id)) {
            Some(Resource::Operation(o)) => {
                Ok(json!({ "Operation": operation_json(o, self.account()) }))
            }
            _ => Err(ServiceError::new(
                "OperationNotFound",
                400,
                format!("Operation not found: {}", r.operation_id),
            )),
        }
    }

    pub(crate) fn list_operations(
        &self,
        r: ListOperationsRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("servicediscovery:ListOperations", &["*".to_string()])?;
        let size = super::page_size(r.max_results, 100)?;
        let filters = r.filters.unwrap_or_default();
        let snap = self.snapshot();
        let view = View(&snap);
        let mut matching = Vec::new();
        for o in view.operations() {
            let mut ok = true;
            for f in &filters {
                ok &= operation_matches(o, f)?;
            }
            if ok {
                matching.push(o);
            }
        }
        let (items, next) = super::page(
            matching
                .into_iter()
                .map(|o| (o.id.as_str(), json!({ "Id": o.id, "Status": o.status }))),
            r.next_token.as_deref(),
            size,
        )?;
        Ok(with_token(json!({ "Operations": items }), next))
    }

    /// The record key a namespace's or service's ARN names in this region.
    fn tagged_key(&self, arn: &str) -> Result<String, ServiceError> {
        let not_found = || {
            ServiceError::new(
                "ResourceNotFoundException",
                400,
                format!("The resource {arn} was not found."),
            )
        };
        let rest = arn.strip_prefix(&self.arn("")).ok_or_else(not_found)?;
        let id = rest
            .strip_prefix("namespace/")
            .or_else(|| rest.strip_prefix("service/"))
            .ok_or_else(not_found)?;
        match self.snapshot().get(id) {
            Some(Resource::Namespace(_) | Resource::Service(_)) => Ok(id.to_string()),
            _ => Err(not_found()),
        }
    }

    /// Changes the tags of the namespace or service `arn` names.
    async fn retag(
        &self,
        arn: &str,
        f: impl FnOnce(&mut Vec<Tag>) -> Result<(), ServiceError>,
    ) -> Result<(), ServiceError> {
        let key = self.tagged_key(arn)?;
        self.update(|rows| {
            let mut r = rows.get(&key).cloned().ok_or_else(|| {
                ServiceError::new(
                    "ResourceNotFoundException",
                    400,
                    format!("The resource {arn} was not found."),
                )
            })?;
            match &mut r {
                Resource::Namespace(n) => f(&mut n.tags)?,
                Resource::Service(s) => f(&mut s.tags)?,
                _ => {}
            }
            rows.put(&key, r);
            Ok(())
        })
        .await
    }

    pub(crate) async fn tag(
        &self,
        r: TagResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:TagResource",
            std::slice::from_ref(&r.resource_arn),
        )?;
        self.retag(&r.resource_arn, |tags| {
            for t in r.tags {
                tags.retain(|o| o.key != t.key);
                tags.push(t);
            }
            check_tags(tags)
        })
        .await?;
        Ok(json!({}))
    }

    pub(crate) async fn untag(
        &self,
        r: UntagResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:UntagResource",
            std::slice::from_ref(&r.resource_arn),
        )?;
        self.retag(&r.resource_arn, |tags| {
            tags.retain(|t| !r.tag_keys.contains(&t.key));
            Ok(())
        })
        .await?;
        Ok(json!({}))
    }

    pub(crate) fn list_tags(
        &self,
        r: ListTagsForResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "servicediscovery:ListTagsForResource",
            std::slice::from_ref(&r.resource_arn),
        )?;
        let key = self.tagged_key(&r.resource_arn)?;
        let tags = match self.snapshot().get(&key) {
            Some(Resource::Namespace(n)) => n.tags.clone(),
            Some(Resource::Service(s)) => s.tags.clone(),
            _ => Vec::new(),
        };
        Ok(json!({ "Tags": tags }))
    }
}
