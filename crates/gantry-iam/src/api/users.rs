//! Users, their access keys and their tags.

use super::*;
use crate::model::{id_of, new_id, new_key_id, new_secret, AccessKey, User, ACCESS_KEYS_PER_USER};
use gantry_core::Ask;

/// The user a request names, or the caller's own when it names none (IAM's rule for GetUser,
/// CreateAccessKey, ListAccessKeys, ...). None for the root.
fn user_name_or_caller<'a>(cx: &Ctx<'a>) -> Option<String> {
    if let Some(n) = cx.p.get("UserName") {
        return Some(n.to_string());
    }
    let arn = &cx.gate.principal().arn;
    arn.split(':')
        .nth(5)
        .and_then(|r| r.strip_prefix("user/"))
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_string)
}

pub(crate) fn no_such_user(name: &str) -> ServiceError {
    no_such(format!("The user with name {name} cannot be found."))
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "UserName", 64)?;
    let path = check_path(&cx.p, "Path")?;
    refuse_boundary(&cx.p)?;
    let tags = read_tags(&cx.p)?;
    let ask = Ask::on(vec![cx.arn("user", &path, name)])
        .request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    cx.gate
        .authorize_ask("iam:CreateUser", &ask, &gantry_core::NoTags)?;
    let user = cx
        .iam
        .write(|d| {
            let id = id_of(name);
            if d.dir.users.contains_key(&id) {
                return Err(exists(format!("User with name {name} already exists.")));
            }
            let u = User {
                name: name.to_string(),
                id: new_id("AIDA"),
                path,
                created: d.now,
                tags,
                attached: Vec::new(),
                inline: Default::default(),
                groups: Default::default(),
            };
            d.put_user(&id, u.clone());
            Ok(u)
        })
        .await?;
    let mut x = Xml::new();
    x.node("User", |x| user_xml(x, cx.iam.account(), &user, true));
    Ok(x)
}

pub fn get(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let account = cx.iam.account();
    let Some(name) = user_name_or_caller(cx) else {
        // The root asking about itself.
        let caller = cx.allow("GetUser", format!("arn:aws:iam::{account}:root"))?;
        let mut x = Xml::new();
        x.node("User", |x| {
            x.leaf("Path", "/")
                .leaf("UserId", &caller.principal().account)
                .leaf("Arn", &caller.principal().arn)
                .leaf("CreateDate", &iso8601(0));
        });
        return Ok(x);
    };
    cx.allow("GetUser", cx.arn_of("user", &name))?;
    let view = cx.iam.view();
    let u = view
        .dir
        .users
        .get(&id_of(&name))
        .ok_or_else(|| no_such_user(&name))?;
    let mut x = Xml::new();
    x.node("User", |x| user_xml(x, account, u, true));
    Ok(x)
}

pub fn list(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    cx.allow("ListUsers", "*".into())?;
    let prefix = cx.p.get("PathPrefix").unwrap_or("/");
    let view = cx.iam.view();
    let users: Vec<&User> = view
        .dir
        .users
        .values()
        .filter(|u| u.path.starts_with(prefix))
        .collect();
    let (users, next) = page(&cx.p, users, |u| id_of(&u.name))?;
    let mut x = Xml::new();
    x.list("Users", users, |x, u| {
        user_xml(x, cx.iam.account(), u, false)
    });
    truncation(&mut x, next);
    Ok(x)
}

pub async fn update(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "UserName", 64)?;
    let new_name = match cx.p.get("NewUserName") {
        Some(_) => Some(check_name(&cx.p, "NewUserName", 64)?.to_string()),
        None => None,
    };
    let new_path = match cx.p.get("NewPath") {
        Some(_) => Some(check_path(&cx.p, "NewPath")?),
        None => None,
    };
    cx.allow("UpdateUser", cx.arn_of("user", name))?;
    cx.iam
        .write(|d| {
            let id = id_of(name);
            let mut u = d
                .dir
                .users
                .get(&id)
                .cloned()
                .ok_or_else(|| no_such_user(name))?;
            if let Some(p) = new_path {
                u.path = p;
            }
            let Some(new) = new_name else {
                d.put_user(&id, u);
                return Ok(());
            };
            let new_id_ = id_of(&new);
            if new_id_ != id && d.dir.users.contains_key(&new_id_) {
                return Err(exists(format!("User with name {new} already exists.")));
            }
            u.name = new.clone();
            d.delete_user(&id);
            d.put_user(&new_id_, u);
            let keys: Vec<AccessKey> = d
                .dir
                .keys
                .values()
                .filter(|k| id_of(&k.user) == id)
                .cloned()
                .collect();
            for mut k in keys {
                k.user = new.clone();
                let kid = k.id.clone();
                d.put_key(&kid, k);
            }
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "UserName", 64)?;
    cx.allow("DeleteUser", cx.arn_of("user", name))?;
    cx.iam
        .write(|d| {
            let id = id_of(name);
            let u = d.dir.users.get(&id).ok_or_else(|| no_such_user(name))?;
            if d.dir.keys.values().any(|k| id_of(&k.user) == id) {
                return Err(conflict(
                    "Cannot delete entity, must delete access keys first.",
                ));
            }
            if !u.attached.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must detach all policies first.",
                ));
            }
            if !u.inline.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must delete policies first.",
                ));
            }
            if !u.groups.is_empty() {
                return Err(conflict(
                    "Cannot delete entity, must remove user from all groups first.",
                ));
            }
            d.delete_user(&id);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

/// The user whose keys a key operation is about (named or the caller), which must exist.
fn key_owner<'a>(cx: &Ctx<'a>, op: &str) -> Result<(String, Caller<'a>), ServiceError> {
    let Some(name) = user_name_or_caller(cx) else {
        return Err(invalid(format!(
            "{op}: gantry's root keys are the admin key in the data directory and the config file's; name a UserName."
        )));
    };
    let caller = cx.allow(op, cx.arn_of("user", &name))?;
    if !cx.iam.view().dir.users.contains_key(&id_of(&name)) {
        return Err(no_such_user(&name));
    }
    Ok((name, caller))
}

fn key_xml(x: &mut Xml, k: &AccessKey) {
    x.leaf("UserName", &k.user)
        .leaf("AccessKeyId", &k.id)
        .leaf("Status", if k.active { "Active" } else { "Inactive" })
        .leaf("CreateDate", &iso8601(k.created));
}

pub async fn create_key(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let (name, _) = key_owner(cx, "CreateAccessKey")?;
    let key = cx
        .iam
        .write(|d| {
            let id = id_of(&name);
            let u = d.dir.users.get(&id).ok_or_else(|| no_such_user(&name))?;
            let owned = d.dir.keys.values().filter(|k| id_of(&k.user) == id).count();
            if owned >= ACCESS_KEYS_PER_USER {
                return Err(limit(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"
                )));
            }
            let k = AccessKey {
                id: new_key_id("AKIA"),
                user: u.name.clone(),
                secret: new_secret(40),
                active: true,
                created: d.now,
            };
            d.put_key(&k.id.clone(), k.clone());
            Ok(k)
        })
        .await?;
    let mut x = Xml::new();
    x.node("AccessKey", |x| {
        key_xml(x, &key);
        x.leaf("SecretAccessKey", &key.secret);
    });
    Ok(x)
}

pub fn list_keys(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let (name, _) = key_owner(cx, "ListAccessKeys")?;
    let view = cx.iam.view();
    let id = id_of(&name);
    let keys: Vec<&AccessKey> = view
        .dir
        .keys
        .values()
        .filter(|k| id_of(&k.user) == id)
        .collect();
    let (keys, next) = page(&cx.p, keys, |k| k.id.clone())?;
    let mut x = Xml::new();
    x.list("AccessKeyMetadata", keys, key_xml);
    truncation(&mut x, next);
    Ok(x)
}

/// The key a request names, which must belong to `user`.
fn owned_key(
    d: &crate::directory::Directory,
    user: &str,
    key_id: &str,
) -> Result<AccessKey, ServiceError> {
    d.keys
        .get(key_id)
        .filter(|k| id_of(&k.user) == id_of(user))
        .cloned()
        .ok_or_else(|| no_such(format!("The Access Key with id {key_id} cannot be found.")))
}

pub async fn update_key(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let key_id = cx.p.required("AccessKeyId")?;
    let active = match cx.p.required("Status")? {
        "Active" => true,
        "Inactive" => false,
        other => {
            return Err(validation(format!(
                "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )))
        }
    };
    let (name, _) = key_owner(cx, "UpdateAccessKey")?;
    cx.iam
        .write(|d| {
            let mut k = owned_key(&d.dir, &name, key_id)?;
            k.active = active;
            d.put_key(key_id, k);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

pub async fn delete_key(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let key_id = cx.p.required("AccessKeyId")?;
    let (name, _) = key_owner(cx, "DeleteAccessKey")?;
    cx.iam
        .write(|d| {
            owned_key(&d.dir, &name, key_id)?;
            d.delete_key(key_id);
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

/// The tags of IAM's own resources (users and roles), for `aws:ResourceTag` conditions.
pub(crate) struct TagsOf<'a>(pub &'a Iam);

impl gantry_core::TagSource for TagsOf<'_> {
    fn tags_of(&self, arn: &str) -> Vec<(String, String)> {
        let view = self.0.view();
        let Some(rest) = arn.split(':').nth(5) else {
            return Vec::new();
        };
        let name = id_of(rest.rsplit('/').next().unwrap_or_default());
        let tags = if rest.starts_with("user/") {
            view.dir.users.get(&name).map(|u| u.tags.clone())
        } else if rest.starts_with("role/") {
            view.dir.roles.get(&name).map(|r| r.tags.clone())
        } else {
            None
        };
        tags.unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect()
    }
}
