//! Groups and their members.

use super::users::no_such_user;
use super::*;
use crate::model::{id_of, new_id, Group, User};

pub(crate) fn no_such_group(name: &str) -> ServiceError {
    no_such(format!("The group with name {name} cannot be found."))
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "GroupName", 128)?;
    let path = check_path(&cx.p, "Path")?;
    cx.allow("CreateGroup", cx.arn("group", &path, name))?;
    let group = cx
        .iam
        .write(|d| {
            let id = id_of(name);
            if d.dir.groups.contains_key(&id) {
                return Err(exists(format!("Group with name {name} already exists.")));
            }
            let g = Group {
                name: name.to_string(),
                id: new_id("AGPA"),
                path,
                created: d.now,
                attached: Vec::new(),
                inline: Default::default(),
            };
            d.put_group(&id, g.clone());
            Ok(g)
        })
        .await?;
    let mut x = Xml::new();
    x.node("Group", |x| group_xml(x, cx.iam.account(), &group));
    Ok(x)
}

pub fn get(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "GroupName", 128)?;
    cx.allow("GetGroup", cx.arn_of("group", name))?;
    let view = cx.iam.view();
    let id = id_of(name);
    let g = view
        .dir
        .groups
        .get(&id)
        .ok_or_else(|| no_such_group(name))?;
    let members: Vec<&User> = view
        .dir
        .users
        .values()
        .filter(|u| u.groups.contains(&id))
        .collect();
    let (members, next) = page(&cx.p, members, |u| id_of(&u.name))?;
    let mut x = Xml::new();
    x.node("Group", |x| group_xml(x, cx.iam.account(), g));
    x.list("Users", members, |x, u| {
        user_xml(x, cx.iam.account(), u, false)
    });
    truncation(&mut x, next);
    Ok(x)
}

pub fn list(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    cx.allow("ListGroups", "*".into())?;
    let prefix = cx.p.get("PathPrefix").unwrap_or("/");
    let view = cx.iam.view();
    let groups: Vec<&Group> = view
        .dir
        .groups
        .values()
        .filter(|g| g.path.starts_with(prefix))
        .collect();
    let (groups, next) = page(&cx.p, groups, |g| id_of(&g.name))?;
    let mut x = Xml::new();
    x.list("Groups", groups, |x, g| group_xml(x, cx.iam.account(), g));
    truncation(&mut x, next);
    Ok(x)
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "GroupName", 128)?;
    cx.allow("DeleteGroup", cx.arn_of("group", name))?;
    cx.iam
        .write(|d| {
            let id = id_of(name);
            let g = d.dir.groups.get(&id).ok_or_else(|| no_such_group(name))?;
            if d.dir.users.values().any(|u| u.groups.contains(&id)) {
                return Err(conflict(
                    "Cannot delete entity, must remove users from group first.",
                ));
            }
            if !g.attached.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            if !g.inline.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            d.delete_group(&id);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

async fn membership(cx: &Ctx<'_>, op: &str, join: bool) -> Result<Xml, ServiceError> {
    let group = check_name(&cx.p, "GroupName", 128)?;
    let user = check_name(&cx.p, "UserName", 64)?;
    cx.allow(op, cx.arn_of("group", group))?;
    cx.iam
        .write(|d| {
            let gid = id_of(group);
            if !d.dir.groups.contains_key(&gid) {
                return Err(no_such_group(group));
            }
            d.update_user(
                &id_of(user),
                || no_such_user(user),
                |u| {
                    if join {
                        u.groups.insert(gid);
                    } else if !u.groups.remove(&gid) {
                        return Err(no_such(format!(
                            "The user with name {user} is not in the group {group}."
                        )));
                    }
                    Ok(())
                },
            )?;
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

pub async fn add_user(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    membership(cx, "AddUserToGroup", true).await
}

pub async fn remove_user(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    membership(cx, "RemoveUserFromGroup", false).await
}

pub fn list_for_user(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let user = check_name(&cx.p, "UserName", 64)?;
    cx.allow("ListGroupsForUser", cx.arn_of("user", user))?;
    let view = cx.iam.view();
    let u = view
        .dir
        .users
        .get(&id_of(user))
        .ok_or_else(|| no_such_user(user))?;
    let groups: Vec<&Group> = u
        .groups
        .iter()
        .filter_map(|g| view.dir.groups.get(g))
        .collect();
    let (groups, next) = page(&cx.p, groups, |g| id_of(&g.name))?;
    let mut x = Xml::new();
    x.list("Groups", groups, |x, g| group_xml(x, cx.iam.account(), g));
    truncation(&mut x, next);
    Ok(x)
}
