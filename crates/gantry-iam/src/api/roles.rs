//! Roles: their trust policies, session limits and tags.

use super::*;
use crate::model::{id_of, new_id, Role};
use gantry_core::Ask;

pub(crate) fn no_such_role(name: &str) -> ServiceError {
    no_such(format!("The role with name {name} cannot be found."))
}

fn max_session(p: &Params<'_>) -> Result<Option<i64>, ServiceError> {
    let v = p.int("MaxSessionDuration")?;
    if let Some(s) = v {
        if !(3600..=43200).contains(&s) {
            return Err(validation(format!(
                "1 validation error detected: Value '{s}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            )));
        }
    }
    Ok(v)
}

fn description(p: &Params<'_>) -> Result<Option<String>, ServiceError> {
    match p.get("Description") {
        Some(d) if d.chars().count() > 1000 => Err(validation(
            "The description of a role is at most 1000 characters.",
        )),
        d => Ok(d.map(str::to_string)),
    }
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "RoleName", 64)?;
    let path = check_path(&cx.p, "Path")?;
    refuse_boundary(&cx.p)?;
    let trust = cx.p.required("AssumeRolePolicyDocument")?;
    let description = description(&cx.p)?;
    let max = max_session(&cx.p)?.unwrap_or(3600);
    let tags = read_tags(&cx.p)?;
    let ask = Ask::on(vec![cx.arn("role", &path, name)])
        .request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    cx.gate
        .authorize_ask("iam:CreateRole", &ask, &gantry_core::NoTags)?;
    check_trust_document(trust)?;
    let role = cx
        .iam
        .write(|d| {
            let id = id_of(name);
            if d.dir.roles.contains_key(&id) {
                return Err(exists(format!("Role with name {name} already exists.")));
            }
            let r = Role {
                name: name.to_string(),
                id: new_id("AROA"),
                path,
                created: d.now,
                trust: trust.to_string(),
                description,
                max_session: max,
                tags,
                attached: Vec::new(),
                inline: Default::default(),
            };
            d.put_role(&id, r.clone());
            Ok(r)
        })
        .await?;
    let mut x = Xml::new();
    x.node("Role", |x| role_xml(x, cx.iam.account(), &role));
    Ok(x)
}

pub fn get(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "RoleName", 64)?;
    cx.allow("GetRole", cx.arn_of("role", name))?;
    let view = cx.iam.view();
    let r = view
        .dir
        .roles
        .get(&id_of(name))
        .ok_or_else(|| no_such_role(name))?;
    let mut x = Xml::new();
    x.node("Role", |x| role_xml(x, cx.iam.account(), r));
    Ok(x)
}

pub fn list(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    cx.allow("ListRoles", "*".into())?;
    let prefix = cx.p.get("PathPrefix").unwrap_or("/");
    let view = cx.iam.view();
    let roles: Vec<&Role> = view
        .dir
        .roles
        .values()
        .filter(|r| r.path.starts_with(prefix))
        .collect();
    let (roles, next) = page(&cx.p, roles, |r| id_of(&r.name))?;
    let mut x = Xml::new();
    x.list("Roles", roles, |x, r| role_xml(x, cx.iam.account(), r));
    truncation(&mut x, next);
    Ok(x)
}

/// Applies `f` to the role the request names.
async fn modify(
    cx: &Ctx<'_>,
    name: &str,
    f: impl FnOnce(&mut Role) -> Result<(), ServiceError>,
) -> Result<Xml, ServiceError> {
    cx.iam
        .write(|d| d.update_role(&id_of(name), || no_such_role(name), f))
        .await?;
    Ok(Xml::new())
}

pub async fn update(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "RoleName", 64)?;
    let description = description(&cx.p)?;
    let max = max_session(&cx.p)?;
    cx.allow("UpdateRole", cx.arn_of("role", name))?;
    modify(cx, name, |r| {
        if let Some(d) = description {
            r.description = Some(d);
        }
        if let Some(m) = max {
            r.max_session = m;
        }
        Ok(())
    })
    .await
}

pub async fn update_trust(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "RoleName", 64)?;
    let doc = cx.p.required("PolicyDocument")?;
    cx.allow("UpdateAssumeRolePolicy", cx.arn_of("role", name))?;
    check_trust_document(doc)?;
    modify(cx, name, |r| {
        r.trust = doc.to_string();
        Ok(())
    })
    .await
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "RoleName", 64)?;
    cx.allow("DeleteRole", cx.arn_of("role", name))?;
    cx.iam
        .write(|d| {
            let id = id_of(name);
            let r = d.dir.roles.get(&id).ok_or_else(|| no_such_role(name))?;
            if !r.attached.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            if !r.inline.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            d.delete_role(&id);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}
