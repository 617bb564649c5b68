//! TagResource, UntagResource, ListTagsForResource on clusters, task definitions, tasks,
//! services and container instances.

use crate::state::{records, State};
use crate::Server;
use gantry_api::model::*;
use gantry_api::taskdef::validate_tags;
use gantry_api::{ApiError, ErrorCode, TaskDefRef};
use gantry_core::Caller;
use gantry_store::Txn;

/// A taggable resource named by its ARN.
enum Resource {
    Cluster(String),
    TaskDefinition(String, i32),
    /// By task id.
    Task(String),
    /// By (cluster, name).
    Service(String, String),
    /// By instance id.
    ContainerInstance(String),
}

fn parse(server: &Server, arn: &str) -> Result<Resource, ApiError> {
    let bad = || {
        ApiError::invalid(format!("Invalid 'resourceArn' {arn:?}: expected the ARN of a cluster, task definition, task, service or container instance of this endpoint."))
    };
    let resource = server.arns.resource(arn).ok_or_else(bad)?;
    if let Some(name) = resource.strip_prefix("cluster/") {
        return Ok(Resource::Cluster(name.to_string()));
    }
    if let Some(rest) = resource.strip_prefix("task/") {
        return Ok(Resource::Task(
            rest.rsplit('/').next().unwrap_or_default().to_string(),
        ));
    }
    if let Some((cluster, name)) = resource
        .strip_prefix("service/")
        .and_then(|r| r.split_once('/'))
    {
        return Ok(Resource::Service(cluster.to_string(), name.to_string()));
    }
    if let Some(rest) = resource.strip_prefix("container-instance/") {
        return Ok(Resource::ContainerInstance(
            rest.rsplit('/').next().unwrap_or_default().to_string(),
        ));
    }
    if resource.starts_with("task-definition/") {
        let r = TaskDefRef::parse(&server.arns, arn)?;
        return Ok(Resource::TaskDefinition(
            r.family,
            r.revision.ok_or_else(bad)?,
        ));
    }
    Err(bad())
}

fn missing() -> ApiError {
    ApiError::new(
        ErrorCode::ResourceNotFoundException,
        "The specified resource could not be found.",
    )
}

/// Applies `f` to the resource's tags and persists the resource.
async fn modify(
    server: &Server,
    arn: &str,
    f: impl FnOnce(&mut Vec<Tag>) -> Result<(), ApiError> + Send,
) -> Result<(), ApiError> {
    let res = parse(server, arn)?;
    server
        .write(move |st: &mut State| match res {
            Resource::Cluster(name) => {
                let c = st
                    .clusters
                    .get_mut(&name)
                    .filter(|c| c.status.as_deref() == Some("ACTIVE"))
                    .ok_or_else(ApiError::cluster_not_found)?;
                let mut tags = c.tags.clone().unwrap_or_default();
                f(&mut tags)?;
                c.tags = Some(tags);
                Ok(((), records::CLUSTERS.put(Txn::new(), &name, &*c)))
            }
            Resource::TaskDefinition(family, rev) => {
                let rec = st
                    .families
                    .get_mut(&family)
                    .and_then(|f| f.revisions.get_mut(&rev))
                    .ok_or_else(missing)?;
                let mut tags = rec.tags.clone();
                f(&mut tags)?;
                rec.tags = tags;
                Ok((
                    (),
                    records::TASK_DEFS.put(Txn::new(), &records::task_def_id(&family, rev), &*rec),
                ))
            }
            Resource::Task(id) => {
                let t = st.tasks.get_mut(&id).ok_or_else(missing)?;
                let mut tags = t.task.tags.clone().unwrap_or_default();
                f(&mut tags)?;
                t.task.tags = Some(tags);
                Ok(((), records::TASKS.put(Txn::new(), &id, &*t)))
            }
            Resource::Service(cluster, name) => {
                let rec = st
                    .services
                    .get_mut(&(cluster.clone(), name.clone()))
                    .filter(|s| s.status() != "INACTIVE")
                    .ok_or_else(|| {
                        ApiError::new(ErrorCode::ServiceNotFoundException, "Service not found.")
                    })?;
                let mut tags = rec.service.tags.clone().unwrap_or_default();
                f(&mut tags)?;
                rec.service.tags = Some(tags);
                Ok((
                    (),
                    records::SERVICES.put(Txn::new(), &records::service_id(&cluster, &name), &*rec),
                ))
            }
            Resource::ContainerInstance(id) => {
                let rec = st.instances.get_mut(&id).ok_or_else(missing)?;
                let mut tags = rec.instance.tags.clone().unwrap_or_default();
                f(&mut tags)?;
                rec.instance.tags = Some(tags);
                Ok(((), records::INSTANCES.put(Txn::new(), &id, &*rec)))
            }
        })
        .await
}

pub async fn tag(
    server: &Server,
    req: TagResourceRequest,
    _: &Caller<'_>,
) -> Result<TagResourceResponse, ApiError> {
    validate_tags(&req.tags)?;
    let new = req.tags;
    modify(server, &req.resource_arn, move |tags| {
        for t in new {
            match tags.iter_mut().find(|x| x.key == t.key) {
                Some(x) => x.value = t.value,
                None => tags.push(t),
            }
        }
        validate_tags(tags)
    })
    .await?;
    Ok(TagResourceResponse::default())
}

pub async fn untag(
    server: &Server,
    req: UntagResourceRequest,
    _: &Caller<'_>,
) -> Result<UntagResourceResponse, ApiError> {
    let gone = req.tag_keys;
    modify(server, &req.resource_arn, move |tags| {
        tags.retain(|t| !gone.iter().any(|k| Some(k) == t.key.as_ref()));
        Ok(())
    })
    .await?;
    Ok(UntagResourceResponse::default())
}

pub async fn list(
    server: &Server,
    req: ListTagsForResourceRequest,
    _: &Caller<'_>,
) -> Result<ListTagsForResourceResponse, ApiError> {
    let tags = tags_of(server, &req.resource_arn)?;
    Ok(ListTagsForResourceResponse { tags: Some(tags) })
}

/// The tags of ECS's resources, for policies' `aws:ResourceTag` and `ecs:ResourceTag` keys.
pub(crate) struct Tagged<'a>(pub &'a Server);

impl gantry_core::TagSource for Tagged<'_> {
    fn tags_of(&self, arn: &str) -> Vec<(String, String)> {
        tags_of(self.0, arn)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| Some((t.key?, t.value.unwrap_or_default())))
            .collect()
    }
}

fn tags_of(server: &Server, arn: &str) -> Result<Vec<Tag>, ApiError> {
    let res = parse(server, arn)?;
    server.read(|st| match res {
        Resource::Cluster(name) => st
            .clusters
            .get(&name)
            .filter(|c| c.status.as_deref() == Some("ACTIVE"))
            .map(|c| c.tags.clone().unwrap_or_default())
            .ok_or_else(ApiError::cluster_not_found),
        Resource::TaskDefinition(family, rev) => st
            .families
            .get(&family)
            .and_then(|f| f.revisions.get(&rev))
            .map(|r| r.tags.clone())
            .ok_or_else(missing),
        Resource::Task(id) => st
            .tasks
            .get(&id)
            .map(|t| t.task.tags.clone().unwrap_or_default())
            .ok_or_else(missing),
        Resource::Service(cluster, name) => st
            .services
            .get(&(cluster, name))
            .map(|s| s.service.tags.clone().unwrap_or_default())
            .ok_or_else(|| {
                ApiError::new(ErrorCode::ServiceNotFoundException, "Service not found.")
            }),
        Resource::ContainerInstance(id) => st
            .instances
            .get(&id)
            .map(|i| i.instance.tags.clone().unwrap_or_default())
            .ok_or_else(missing),
    })?
}
