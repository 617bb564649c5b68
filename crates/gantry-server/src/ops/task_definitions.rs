//! RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.

use crate::paginate::{max_results, page, Order};
use crate::state::{put_family, records, State, TaskDefRecord};
use crate::{now_secs, Server};
use gantry_api::model::*;
use gantry_api::{taskdef, ApiError, TaskDefRef};
use gantry_core::Caller;
use gantry_store::Txn;

fn not_found() -> ApiError {
    ApiError::client("Unable to describe task definition.")
}

/// The revision a reference names; without a revision, the latest ACTIVE one.
pub fn resolve<'a>(st: &'a State, r: &TaskDefRef) -> Option<&'a TaskDefRecord> {
    let family = st.families.get(&r.family)?;
    match r.revision {
        Some(rev) => family.revisions.get(&rev),
        None => family
            .revisions
            .values()
            .rev()
            .find(|t| t.status() == TaskDefinitionStatus::Active),
    }
}

pub async fn register(
    server: &Server,
    req: RegisterTaskDefinitionRequest,
    who: &Caller<'_>,
) -> Result<RegisterTaskDefinitionResponse, ApiError> {
    let mut td = taskdef::build(&req)?;
    // memberOf expressions must parse now, not fail every later RunTask.
    for c in td.placement_constraints.iter().flatten() {
        if let Some(e) = c.expression.as_deref() {
            super::placement::expression(e).map_err(|e| {
                ApiError::client(format!(
                    "Invalid 'placementConstraints.expression': {}",
                    e.message
                ))
            })?;
        }
    }
    let tags = req.tags.unwrap_or_default();
    let family = req.family;
    td.registered_at = Some(now_secs());
    td.registered_by = Some(who.principal().arn.clone());
    let arns = server.arns.clone();
    let rec = server
        .write(move |st| {
            let f = st.families.entry(family.clone()).or_default();
            let revision = f.last_revision.checked_add(1).ok_or_else(|| {
                ApiError::client(format!("The family '{family}' has run out of revisions."))
            })?;
            f.last_revision = revision;
            td.revision = Some(revision);
            td.task_definition_arn = Some(arns.task_definition(&family, revision));
            let rec = TaskDefRecord {
                task_definition: td,
                tags,
            };
            f.revisions.insert(revision, rec.clone());
            let txn =
                records::TASK_DEFS.put(Txn::new(), &records::task_def_id(&family, revision), &rec);
            Ok((rec, put_family(txn, &family, f)))
        })
        .await?;
    Ok(RegisterTaskDefinitionResponse {
        task_definition: Some(rec.task_definition),
        tags: Some(rec.tags),
    })
}

pub async fn describe(
    server: &Server,
    req: DescribeTaskDefinitionRequest,
    _: &Caller<'_>,
) -> Result<DescribeTaskDefinitionResponse, ApiError> {
    let r = TaskDefRef::parse(&server.arns, &req.task_definition)?;
    let with_tags = req
        .include
        .unwrap_or_default()
        .contains(&TaskDefinitionField::Tags);
    server.read(|st| {
        let rec = resolve(st, &r).ok_or_else(not_found)?;
        Ok(DescribeTaskDefinitionResponse {
            task_definition: Some(rec.task_definition.clone()),
            tags: with_tags.then(|| rec.tags.clone()),
        })
    })?
}

pub async fn list(
    server: &Server,
    req: ListTaskDefinitionsRequest,
    _: &Caller<'_>,
) -> Result<ListTaskDefinitionsResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 100)?;
    let status = req.status.unwrap_or(TaskDefinitionStatus::Active);
    let order = match req.sort {
        Some(SortOrder::Desc) => Order::Desc,
        _ => Order::Asc,
    };
    // ECS matches `familyPrefix` against the whole family name here.
    let family = req.family_prefix;
    let mut items: Vec<(String, i32)> = server.read(|st| {
        st.families
            .iter()
            .filter(|(name, _)| family.as_ref().is_none_or(|f| f == *name))
            .flat_map(|(name, f)| {
                f.revisions
                    .values()
                    .filter(|r| r.status() == status)
                    .map(move |r| (name.clone(), r.task_definition.revision.unwrap_or_default()))
            })
            .collect()
    })?;
    if order == Order::Desc {
        items.reverse();
    }
    // A tab sorts below every character a family name may hold, so keys sort as (family, revision).
    let key = |(f, r): &(String, i32)| format!("{f}\t{r:010}");
    let p = page(items, key, order, req.next_token.as_deref(), limit)?;
    Ok(ListTaskDefinitionsResponse {
        task_definition_arns: Some(
            p.items
                .iter()
                .map(|(f, r)| server.arns.task_definition(f, *r))
                .collect(),
        ),
        next_token: p.next_token,
    })
}

pub async fn list_families(
    server: &Server,
    req: ListTaskDefinitionFamiliesRequest,
    _: &Caller<'_>,
) -> Result<ListTaskDefinitionFamiliesResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 100)?;
    let status = req.status.unwrap_or(TaskDefinitionFamilyStatus::All);
    let prefix = req.family_prefix.unwrap_or_default();
    let names: Vec<String> = server.read(|st| {
        st.families
            .iter()
            .filter(|(name, f)| {
                name.starts_with(&prefix)
                    && !f.revisions.is_empty()
                    && match status {
                        TaskDefinitionFamilyStatus::Active => f.has_active(),
                        TaskDefinitionFamilyStatus::Inactive => !f.has_active(),
                        TaskDefinitionFamilyStatus::All => true,
                    }
            })
            .map(|(name, _)| name.clone())
            .collect()
    })?;
    let p = page(
        names,
        String::clone,
        Order::Asc,
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(ListTaskDefinitionFamiliesResponse {
        families: Some(p.items),
        next_token: p.next_token,
    })
}

pub async fn deregister(
    server: &Server,
    req: DeregisterTaskDefinitionRequest,
    _: &Caller<'_>,
) -> Result<DeregisterTaskDefinitionResponse, ApiError> {
    let r = TaskDefRef::parse(&server.arns, &req.task_definition)?;
    let Some(revision) = r.revision else {
        return Err(ApiError::client(format!(
            "Invalid 'taskDefinition' {:?}: deregistration needs a revision (family:revision or a full ARN).",
            req.task_definition
        )));
    };
    let td = server
        .write(move |st| {
            let rec = st
                .families
                .get_mut(&r.family)
                .and_then(|f| f.revisions.get_mut(&revision))
                .ok_or_else(|| ApiError::client("The specified task definition does not exist."))?;
            if rec.status() == TaskDefinitionStatus::Active {
                rec.task_definition.status = Some(TaskDefinitionStatus::Inactive);
                rec.task_definition.deregistered_at = Some(now_secs());
                let txn = records::TASK_DEFS.put(
                    Txn::new(),
                    &records::task_def_id(&r.family, revision),
                    &*rec,
                );
                Ok((rec.task_definition.clone(), txn))
            } else {
                Ok((rec.task_definition.clone(), Txn::new()))
            }
        })
        .await?;
    Ok(DeregisterTaskDefinitionResponse {
        task_definition: Some(td),
    })
}

pub async fn delete(
    server: &Server,
    req: DeleteTaskDefinitionsRequest,
    _: &Caller<'_>,
) -> Result<DeleteTaskDefinitionsResponse, ApiError> {
    if req.task_definitions.is_empty() || req.task_definitions.len() > 10 {
        return Err(ApiError::invalid(
            "Invalid 'taskDefinitions': give between 1 and 10 task definitions.",
        ));
    }
    let mut refs = Vec::new();
    for ident in &req.task_definitions {
        let r = TaskDefRef::parse(&server.arns, ident)?;
        if r.revision.is_none() {
            return Err(ApiError::client(format!(
                "Invalid 'taskDefinitions' entry {ident:?}: a revision is required (family:revision or a full ARN)."
            )));
        }
        refs.push((ident.clone(), r));
    }
    let arns = server.arns.clone();
    let (deleted, failures) = server
        .write(move |st| {
            let now = now_secs();
            let mut txn = Txn::new();
            let mut deleted = Vec::new();
            let mut failures = Vec::new();
            for (ident, r) in refs {
                let revision = r.revision.unwrap_or_default();
                let arn = arns.task_definition(&r.family, revision);
                let rec = st.families.get_mut(&r.family).and_then(|f| f.revisions.get_mut(&revision));
                let fail = |reason: &str| Failure {
                    arn: Some(if ident.starts_with("arn:") { ident.clone() } else { arn.clone() }),
                    reason: Some(reason.to_string()),
                    detail: None,
                };
                match rec {
                    None => failures.push(fail("The specified task definition does not exist.")),
                    Some(rec) => match rec.status() {
                        TaskDefinitionStatus::Active => failures.push(fail(
                            "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                        )),
                        TaskDefinitionStatus::Inactive => {
                            rec.task_definition.status = Some(TaskDefinitionStatus::DeleteInProgress);
                            rec.task_definition.delete_requested_at = Some(now);
                            txn = records::TASK_DEFS.put(txn, &records::task_def_id(&r.family, revision), &*rec);
                            deleted.push(rec.task_definition.clone());
                        }
                        TaskDefinitionStatus::DeleteInProgress => deleted.push(rec.task_definition.clone()),
                    },
                }
            }
            Ok(((deleted, failures), txn))
        })
        .await?;
    Ok(DeleteTaskDefinitionsResponse {
        task_definitions: Some(deleted),
        failures: Some(failures),
    })
}
