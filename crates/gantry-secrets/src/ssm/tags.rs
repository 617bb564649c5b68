//! Tags on parameters: AddTagsToResource, RemoveTagsFromResource, ListTagsForResource
//! (ResourceType `Parameter`, ResourceId the parameter's name or ARN).

use super::ops::{authorize, check_tags, too_many_tags};
use super::*;
use gantry_api::ssm::{
    AddTagsToResourceRequest, AddTagsToResourceResult, ListTagsForResourceRequest,
    ListTagsForResourceResult, RemoveTagsFromResourceRequest, RemoveTagsFromResourceResult,
    ResourceTypeForTagging, Tag,
};
use gantry_core::{Ask, Gate};

/// The parameter a tagging request names (ResourceType `Parameter`, ResourceId its name or
/// ARN).
fn tagged(
    s: Params<'_>,
    kind: ResourceTypeForTagging,
    id: &str,
) -> Result<(Reference, String), ServiceError> {
    if kind != ResourceTypeForTagging::Parameter {
        return Err(ServiceError::new(
            "InvalidResourceType",
            400,
            format!(
                "gantry serves SSM's Parameter Store only: ResourceType {} is not served (use Parameter).",
                kind.as_str()
            ),
        ));
    }
    let arn = s.arn_for(id);
    let rf = s.reference(id).map_err(|_| invalid_resource())?;
    Ok((rf, arn))
}

fn invalid_resource() -> ServiceError {
    ServiceError::new(
        "InvalidResourceId",
        400,
        "The resource ID isn't valid. Verify that you entered the correct ID and try again.",
    )
}

pub(super) async fn add_tags(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: AddTagsToResourceRequest,
) -> Result<AddTagsToResourceResult, ServiceError> {
    let (rf, arn) = tagged(s, r.resource_type, &r.resource_id)?;
    let ask =
        Ask::on(vec![arn]).request_tags(r.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    authorize(s, gate, "ssm:AddTagsToResource", ask)?;
    check_tags(&r.tags)?;
    s.0.parameters
        .update(|rows| {
            let mut rec = match s.find(rows.all(), &rf) {
                Some(rec) if rf.selector.is_none() => rec.clone(),
                _ => return Err(invalid_resource()),
            };
            for t in &r.tags {
                rec.tags.insert(t.key.clone(), t.value.clone());
            }
            if rec.tags.len() > MAX_TAGS {
                return Err(too_many_tags());
            }
            let key = rec.name.clone();
            rows.put(&key, rec);
            Ok(())
        })
        .await?;
    Ok(AddTagsToResourceResult {})
}

pub(super) async fn remove_tags(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: RemoveTagsFromResourceRequest,
) -> Result<RemoveTagsFromResourceResult, ServiceError> {
    let (rf, arn) = tagged(s, r.resource_type, &r.resource_id)?;
    let ask = Ask::on(vec![arn]).key("aws:TagKeys", r.tag_keys.clone());
    authorize(s, gate, "ssm:RemoveTagsFromResource", ask)?;
    s.0.parameters
        .update(|rows| {
            let mut rec = match s.find(rows.all(), &rf) {
                Some(rec) if rf.selector.is_none() => rec.clone(),
                _ => return Err(invalid_resource()),
            };
            let before = rec.tags.len();
            for k in &r.tag_keys {
                rec.tags.remove(k);
            }
            if rec.tags.len() != before {
                let key = rec.name.clone();
                rows.put(&key, rec);
            }
            Ok(())
        })
        .await?;
    Ok(RemoveTagsFromResourceResult {})
}

pub(super) fn list_tags(
    s: Params<'_>,
    gate: &Gate<'_>,
    r: ListTagsForResourceRequest,
) -> Result<ListTagsForResourceResult, ServiceError> {
    let (rf, arn) = tagged(s, r.resource_type, &r.resource_id)?;
    authorize(s, gate, "ssm:ListTagsForResource", Ask::on(vec![arn]))?;
    let rows = s.0.parameters.snapshot();
    let rec = match s.find(&rows, &rf) {
        Some(rec) if rf.selector.is_none() => rec,
        _ => return Err(invalid_resource()),
    };
    Ok(ListTagsForResourceResult {
        tag_list: Some(
            rec.tags
                .iter()
                .map(|(k, v)| Tag {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        ),
    })
}
