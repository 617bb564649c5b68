//! Tags on users and roles: TagUser/TagRole, UntagUser/UntagRole, ListUserTags/ListRoleTags.

use super::roles::no_such_role;
use super::users::{no_such_user, TagsOf};
use super::*;
use crate::directory::Draft;
use crate::model::id_of;
use gantry_core::Ask;

fn name<'a>(cx: &Ctx<'a>, h: Holder) -> Result<&'a str, ServiceError> {
    check_name(&cx.p, &format!("{}Name", h.title()), 64)
}

fn missing(h: Holder, name: &str) -> ServiceError {
    match h {
        Holder::Role => no_such_role(name),
        _ => no_such_user(name),
    }
}

/// Applies `f` to the tags of the user or role `name`, and writes it.
fn change(
    d: &mut Draft,
    h: Holder,
    name: &str,
    f: impl FnOnce(&mut Vec<crate::model::Tag>) -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    let (id, gone) = (id_of(name), || missing(h, name));
    match h {
        Holder::Role => d.update_role(&id, gone, |r| f(&mut r.tags)),
        _ => d.update_user(&id, gone, |u| f(&mut u.tags)),
    }
}

pub async fn tag(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = name(cx, h)?;
    let tags = read_tags(&cx.p)?;
    let ask = Ask::on(vec![cx.arn_of(h.lower(), name)])
        .request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    cx.gate
        .authorize_ask(&format!("iam:Tag{}", h.title()), &ask, &TagsOf(cx.iam))?;
    cx.iam
        .write(|d| change(d, h, name, |t| merge_tags(t, tags)))
        .await?;
    Ok(Xml::new())
}

pub async fn untag(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = name(cx, h)?;
    let keys: Vec<String> = cx.p.list("TagKeys").iter().map(|k| k.to_string()).collect();
    let ask = Ask::on(vec![cx.arn_of(h.lower(), name)]).key("aws:TagKeys", keys.clone());
    cx.gate
        .authorize_ask(&format!("iam:Untag{}", h.title()), &ask, &TagsOf(cx.iam))?;
    cx.iam
        .write(|d| {
            change(d, h, name, |tags| {
                tags.retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
                Ok(())
            })
        })
        .await?;
    Ok(Xml::new())
}

pub fn list(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = name(cx, h)?;
    cx.allow(
        &format!("List{}Tags", h.title()),
        cx.arn_of(h.lower(), name),
    )?;
    let view = cx.iam.view();
    let id = id_of(name);
    let tags = match h {
        Holder::Role => view.dir.roles.get(&id).map(|r| r.tags.clone()),
        _ => view.dir.users.get(&id).map(|u| u.tags.clone()),
    }
    .ok_or_else(|| missing(h, name))?;
    let (tags, next) = page(&cx.p, tags, |t| t.key.clone())?;
    let mut x = Xml::new();
    x.list("Tags", &tags, |x, t| {
        x.leaf("Key", &t.key).leaf("Value", &t.value);
    });
    truncation(&mut x, next);
    Ok(x)
}
