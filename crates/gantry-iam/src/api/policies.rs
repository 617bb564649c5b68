//! Managed policies with their versions, attachments to users, groups and roles, and inline
//! policies.

use super::groups::no_such_group;
use super::roles::no_such_role;
use super::users::no_such_user;
use super::*;
use crate::directory::{Directory, Draft};
use crate::model::{
    id_of, new_id, Inline, ManagedPolicy, PolicyVersion, ATTACHED_POLICIES_PER_ENTITY,
    VERSIONS_PER_POLICY,
};
use gantry_core::Ask;

/// IAM's size limits, in characters without whitespace: a managed policy, and the inline
/// policies of one user, group or role together.
const MANAGED_POLICY_SIZE: usize = 6144;

fn inline_quota(h: Holder) -> usize {
    match h {
        Holder::User => 2048,
        Holder::Group => 5120,
        Holder::Role => 10240,
    }
}

fn size(doc: &str) -> usize {
    doc.chars().filter(|c| !c.is_whitespace()).count()
}

/// A managed policy as the API shows it.
struct Shown {
    name: String,
    id: String,
    arn: String,
    path: String,
    default_version: String,
    description: Option<String>,
    created: i64,
    updated: i64,
}

fn attachments(dir: &Directory, policy_arn: &str) -> usize {
    let n = |v: &Vec<String>| v.iter().filter(|a| *a == policy_arn).count();
    dir.users.values().map(|u| n(&u.attached)).sum::<usize>()
        + dir.groups.values().map(|g| n(&g.attached)).sum::<usize>()
        + dir.roles.values().map(|r| n(&r.attached)).sum::<usize>()
}

fn customer(cx: &Ctx<'_>, dir: &Directory, policy_arn: &str) -> Option<ManagedPolicy> {
    let name = policy_arn.rsplit('/').next()?;
    dir.policies
        .get(&id_of(name))
        .filter(|p| cx.arn("policy", &p.path, &p.name) == policy_arn)
        .cloned()
}

fn shown(cx: &Ctx<'_>, dir: &Directory, policy_arn: &str) -> Option<Shown> {
    if let Some(p) = cx.iam.aws_policies().iter().find(|p| p.arn == policy_arn) {
        return Some(Shown {
            name: p.name.clone(),
            id: format!(
                "ANPA{}",
                &id_of(&p.name).to_ascii_uppercase().replace('_', "")
            ),
            arn: p.arn.clone(),
            path: p.path.clone(),
            default_version: p.default_version.clone(),
            description: Some(p.description.clone()),
            created: p.created,
            updated: p.created,
        });
    }
    let p = customer(cx, dir, policy_arn)?;
    Some(Shown {
        arn: cx.arn("policy", &p.path, &p.name),
        name: p.name,
        id: p.id,
        path: p.path,
        default_version: p.default_version,
        description: p.description,
        created: p.created,
        updated: p.updated,
    })
}

fn no_such_policy(policy_arn: &str) -> ServiceError {
    no_such(format!(
        "Policy {policy_arn} does not exist or is not attachable."
    ))
}

fn policy_xml(x: &mut Xml, dir: &Directory, p: &Shown) {
    x.leaf("PolicyName", &p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &p.arn)
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", &p.default_version)
        .leaf("AttachmentCount", &attachments(dir, &p.arn).to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .opt("Description", p.description.as_deref())
        .leaf("CreateDate", &iso8601(p.created))
        .leaf("UpdateDate", &iso8601(p.updated));
}

fn check_managed_document(doc: &str) -> Result<(), ServiceError> {
    check_identity_document(doc)?;
    if size(doc) > MANAGED_POLICY_SIZE {
        return Err(limit(format!(
            "Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}"
        )));
    }
    Ok(())
}

pub async fn create(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let name = check_name(&cx.p, "PolicyName", 128)?;
    let path = check_path(&cx.p, "Path")?;
    let doc = cx.p.required("PolicyDocument")?;
    let description = cx.p.get("Description").map(str::to_string);
    let tags = read_tags(&cx.p)?;
    let ask = Ask::on(vec![cx.arn("policy", &path, name)])
        .request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str())));
    cx.gate
        .authorize_ask("iam:CreatePolicy", &ask, &gantry_core::NoTags)?;
    check_managed_document(doc)?;
    let arn = cx.arn("policy", &path, name);
    let dir = cx
        .iam
        .write(|d| {
            let id = id_of(name);
            if d.dir.policies.contains_key(&id) {
                return Err(exists(format!(
                    "A policy called {name} already exists. Duplicate names are not allowed."
                )));
            }
            let p = ManagedPolicy {
                name: name.to_string(),
                id: new_id("ANPA"),
                path,
                description,
                created: d.now,
                updated: d.now,
                default_version: "v1".into(),
                versions: vec![PolicyVersion {
                    id: "v1".into(),
                    document: doc.to_string(),
                    created: d.now,
                }],
                next_version: 2,
                tags,
            };
            d.put_policy(&id, p);
            Ok(d.dir.clone())
        })
        .await?;
    let p = shown(cx, &dir, &arn).ok_or_else(|| no_such_policy(&arn))?;
    let mut x = Xml::new();
    x.node("Policy", |x| policy_xml(x, &dir, &p));
    Ok(x)
}

pub fn get(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    cx.allow("GetPolicy", arn.to_string())?;
    let view = cx.iam.view();
    let p = shown(cx, &view.dir, arn).ok_or_else(|| no_such_policy(arn))?;
    let mut x = Xml::new();
    x.node("Policy", |x| policy_xml(x, &view.dir, &p));
    Ok(x)
}

pub fn list(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    cx.allow("ListPolicies", "*".into())?;
    let scope = cx.p.get("Scope").unwrap_or("All");
    if !["All", "AWS", "Local"].contains(&scope) {
        return Err(validation(format!(
            "1 validation error detected: Value '{scope}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
        )));
    }
    let only_attached = cx.p.bool("OnlyAttached")?.unwrap_or(false);
    let prefix = cx.p.get("PathPrefix").unwrap_or("/");
    let view = cx.iam.view();
    let mut arns: Vec<String> = Vec::new();
    if scope != "Local" {
        arns.extend(cx.iam.aws_policies().iter().map(|p| p.arn.clone()));
    }
    if scope != "AWS" {
        arns.extend(
            view.dir
                .policies
                .values()
                .map(|p| cx.arn("policy", &p.path, &p.name)),
        );
    }
    let mut all: Vec<Shown> = arns
        .iter()
        .filter_map(|a| shown(cx, &view.dir, a))
        .filter(|p| p.path.starts_with(prefix))
        .filter(|p| !only_attached || attachments(&view.dir, &p.arn) > 0)
        .collect();
    all.sort_by(|a, b| a.arn.cmp(&b.arn));
    let (all, next) = page(&cx.p, all, |p| p.arn.clone())?;
    let mut x = Xml::new();
    x.list("Policies", &all, |x, p| policy_xml(x, &view.dir, p));
    truncation(&mut x, next);
    Ok(x)
}

/// Applies `f` to the customer-managed policy `arn` (AWS's are read-only).
async fn modify<T>(
    cx: &Ctx<'_>,
    arn: &str,
    f: impl FnOnce(&mut ManagedPolicy, &Draft) -> Result<T, ServiceError>,
) -> Result<T, ServiceError> {
    if arn.starts_with("arn:aws:iam::aws:policy/") {
        return Err(ServiceError::new(
            "UnmodifiableEntity",
            400,
            format!("{arn} is managed by AWS and cannot be changed."),
        ));
    }
    cx.iam
        .write(|d| {
            let mut p = customer(cx, &d.dir, arn).ok_or_else(|| no_such_policy(arn))?;
            let out = f(&mut p, d)?;
            p.updated = d.now;
            d.put_policy(&id_of(&p.name), p);
            Ok(out)
        })
        .await
}

pub async fn delete(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    cx.allow("DeletePolicy", arn.to_string())?;
    if arn.starts_with("arn:aws:iam::aws:policy/") {
        return Err(ServiceError::new(
            "UnmodifiableEntity",
            400,
            format!("{arn} is managed by AWS and cannot be deleted."),
        ));
    }
    cx.iam
        .write(|d| {
            let p = customer(cx, &d.dir, arn).ok_or_else(|| no_such_policy(arn))?;
            if attachments(&d.dir, arn) > 0 {
                return Err(conflict("Cannot delete a policy attached to entities."));
            }
            if p.versions.len() > 1 {
                return Err(conflict("This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy."));
            }
            d.delete_policy(&id_of(&p.name));
            Ok(())
        })
        .await?;
    Ok(Xml::new())
}

fn version_xml(x: &mut Xml, v: &PolicyVersion, default: &str, with_document: bool) {
    if with_document {
        x.leaf("Document", &url_encode(&v.document));
    }
    x.leaf("VersionId", &v.id)
        .leaf(
            "IsDefaultVersion",
            if v.id == default { "true" } else { "false" },
        )
        .leaf("CreateDate", &iso8601(v.created));
}

pub async fn create_version(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    let doc = cx.p.required("PolicyDocument")?;
    let set_default = cx.p.bool("SetAsDefault")?.unwrap_or(false);
    cx.allow("CreatePolicyVersion", arn.to_string())?;
    check_managed_document(doc)?;
    let (v, default) = modify(cx, arn, |p, d| {
        if p.versions.len() >= VERSIONS_PER_POLICY {
            return Err(limit(format!("A managed policy can have up to {VERSIONS_PER_POLICY} versions. Before you create a new version, you must delete an existing version.")));
        }
        let v = PolicyVersion {
            id: format!("v{}", p.next_version),
            document: doc.to_string(),
            created: d.now,
        };
        p.next_version += 1;
        p.versions.push(v.clone());
        if set_default {
            p.default_version = v.id.clone();
        }
        Ok((v, p.default_version.clone()))
    })
    .await?;
    let mut x = Xml::new();
    x.node("PolicyVersion", |x| version_xml(x, &v, &default, false));
    Ok(x)
}

/// The versions of a policy (AWS's have one) and its default version's id.
fn versions(
    cx: &Ctx<'_>,
    dir: &Directory,
    arn: &str,
) -> Result<(Vec<PolicyVersion>, String), ServiceError> {
    if let Some(p) = cx.iam.aws_policies().iter().find(|p| p.arn == arn) {
        let v = PolicyVersion {
            id: p.default_version.clone(),
            document: p.document.clone(),
            created: p.created,
        };
        return Ok((vec![v], p.default_version.clone()));
    }
    let p = customer(cx, dir, arn).ok_or_else(|| no_such_policy(arn))?;
    Ok((p.versions, p.default_version))
}

pub fn get_version(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    let id = cx.p.required("VersionId")?;
    cx.allow("GetPolicyVersion", arn.to_string())?;
    let view = cx.iam.view();
    let (all, default) = versions(cx, &view.dir, arn)?;
    let v = all.iter().find(|v| v.id == id).ok_or_else(|| {
        no_such(format!(
            "Policy {arn} version {id} does not exist or is not attachable."
        ))
    })?;
    let mut x = Xml::new();
    x.node("PolicyVersion", |x| version_xml(x, v, &default, true));
    Ok(x)
}

pub fn list_versions(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    cx.allow("ListPolicyVersions", arn.to_string())?;
    let view = cx.iam.view();
    let (mut all, default) = versions(cx, &view.dir, arn)?;
    all.reverse();
    let (all, next) = page(&cx.p, all, |v| v.id.clone())?;
    let mut x = Xml::new();
    x.list("Versions", &all, |x, v| version_xml(x, v, &default, false));
    truncation(&mut x, next);
    Ok(x)
}

pub async fn delete_version(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    let id = cx.p.required("VersionId")?;
    cx.allow("DeletePolicyVersion", arn.to_string())?;
    modify(cx, arn, |p, _| {
        if p.default_version == id {
            return Err(conflict("Cannot delete the default version of a policy."));
        }
        let before = p.versions.len();
        p.versions.retain(|v| v.id != id);
        if p.versions.len() == before {
            return Err(no_such(format!(
                "Policy {arn} version {id} does not exist."
            )));
        }
        Ok(())
    })
    .await?;
    Ok(Xml::new())
}

pub async fn set_default_version(cx: &Ctx<'_>) -> Result<Xml, ServiceError> {
    let arn = cx.p.required("PolicyArn")?;
    let id = cx.p.required("VersionId")?;
    cx.allow("SetDefaultPolicyVersion", arn.to_string())?;
    modify(cx, arn, |p, _| {
        if !p.versions.iter().any(|v| v.id == id) {
            return Err(no_such(format!(
                "Policy {arn} version {id} does not exist."
            )));
        }
        p.default_version = id.to_string();
        Ok(())
    })
    .await?;
    Ok(Xml::new())
}

// ---- what users, groups and roles hold ----

fn holder_name<'a>(cx: &Ctx<'a>, h: Holder) -> Result<&'a str, ServiceError> {
    let max = if h == Holder::Group { 128 } else { 64 };
    check_name(&cx.p, &format!("{}Name", h.title()), max)
}

fn missing(h: Holder, name: &str) -> ServiceError {
    match h {
        Holder::User => no_such_user(name),
        Holder::Group => no_such_group(name),
        Holder::Role => no_such_role(name),
    }
}

/// The attached policies and inline policies of a holder.
fn held<'d>(dir: &'d Directory, h: Holder, name: &str) -> Option<(&'d Vec<String>, &'d Inline)> {
    let id = id_of(name);
    match h {
        Holder::User => dir.users.get(&id).map(|u| (&u.attached, &u.inline)),
        Holder::Group => dir.groups.get(&id).map(|g| (&g.attached, &g.inline)),
        Holder::Role => dir.roles.get(&id).map(|r| (&r.attached, &r.inline)),
    }
}

/// Applies `f` to a holder's attached and inline policies, and writes it.
fn change_held(
    d: &mut Draft,
    h: Holder,
    name: &str,
    f: impl FnOnce(&mut Vec<String>, &mut Inline) -> Result<(), ServiceError>,
) -> Result<(), ServiceError> {
    let (id, gone) = (id_of(name), || missing(h, name));
    match h {
        Holder::User => d.update_user(&id, gone, |u| f(&mut u.attached, &mut u.inline)),
        Holder::Group => d.update_group(&id, gone, |g| f(&mut g.attached, &mut g.inline)),
        Holder::Role => d.update_role(&id, gone, |r| f(&mut r.attached, &mut r.inline)),
    }
}

pub async fn attach(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    let arn = cx.p.required("PolicyArn")?;
    let op = format!("Attach{}Policy", h.title());
    let ask = Ask::on(vec![cx.arn_of(h.lower(), name)]).key("iam:PolicyARN", vec![arn.to_string()]);
    cx.gate
        .authorize_ask(&format!("iam:{op}"), &ask, &super::users::TagsOf(cx.iam))?;
    cx.iam
        .write(|d| {
            if shown(cx, &d.dir, arn).is_none() {
                return Err(no_such_policy(arn));
            }
            change_held(d, h, name, |attached, _| {
                if attached.iter().any(|a| a == arn) {
                    return Ok(());
                }
                if attached.len() >= ATTACHED_POLICIES_PER_ENTITY {
                    return Err(limit(format!(
                        "Cannot exceed quota for PoliciesPer{}: {ATTACHED_POLICIES_PER_ENTITY}",
                        h.title()
                    )));
                }
                attached.push(arn.to_string());
                Ok(())
            })
        })
        .await?;
    Ok(Xml::new())
}

pub async fn detach(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    let arn = cx.p.required("PolicyArn")?;
    let ask = Ask::on(vec![cx.arn_of(h.lower(), name)]).key("iam:PolicyARN", vec![arn.to_string()]);
    cx.gate.authorize_ask(
        &format!("iam:Detach{}Policy", h.title()),
        &ask,
        &super::users::TagsOf(cx.iam),
    )?;
    cx.iam
        .write(|d| {
            change_held(d, h, name, |attached, _| {
                let before = attached.len();
                attached.retain(|a| a != arn);
                if attached.len() == before {
                    return Err(no_such(format!("Policy {arn} was not found.")));
                }
                Ok(())
            })
        })
        .await?;
    Ok(Xml::new())
}

pub fn list_attached(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    cx.allow(
        &format!("ListAttached{}Policies", h.title()),
        cx.arn_of(h.lower(), name),
    )?;
    let prefix = cx.p.get("PathPrefix").unwrap_or("/");
    let view = cx.iam.view();
    let (attached, _) = held(&view.dir, h, name).ok_or_else(|| missing(h, name))?;
    let shown: Vec<Shown> = attached
        .iter()
        .filter_map(|a| shown(cx, &view.dir, a))
        .filter(|p| p.path.starts_with(prefix))
        .collect();
    let (shown, next) = page(&cx.p, shown, |p| p.arn.clone())?;
    let mut x = Xml::new();
    x.list("AttachedPolicies", &shown, |x, p| {
        x.leaf("PolicyName", &p.name).leaf("PolicyArn", &p.arn);
    });
    truncation(&mut x, next);
    Ok(x)
}

pub async fn put_inline(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    let policy = check_name(&cx.p, "PolicyName", 128)?;
    let doc = cx.p.required("PolicyDocument")?;
    cx.allow(
        &format!("Put{}Policy", h.title()),
        cx.arn_of(h.lower(), name),
    )?;
    check_identity_document(doc)?;
    cx.iam
        .write(|d| {
            change_held(d, h, name, |_, inline| {
                inline.insert(policy.to_string(), doc.to_string());
                let total: usize = inline.values().map(|d| size(d)).sum();
                if total > inline_quota(h) {
                    return Err(limit(format!(
                        "Maximum policy size of {} bytes exceeded for {} {name}",
                        inline_quota(h),
                        h.lower()
                    )));
                }
                Ok(())
            })
        })
        .await?;
    Ok(Xml::new())
}

fn no_such_inline(h: Holder, policy: &str) -> ServiceError {
    no_such(format!(
        "The {} policy with name {policy} cannot be found.",
        h.lower()
    ))
}

pub fn get_inline(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    let policy = check_name(&cx.p, "PolicyName", 128)?;
    cx.allow(
        &format!("Get{}Policy", h.title()),
        cx.arn_of(h.lower(), name),
    )?;
    let view = cx.iam.view();
    let (_, inline) = held(&view.dir, h, name).ok_or_else(|| missing(h, name))?;
    let doc = inline
        .get(policy)
        .ok_or_else(|| no_such_inline(h, policy))?;
    let mut x = Xml::new();
    x.leaf(&format!("{}Name", h.title()), name)
        .leaf("PolicyName", policy)
        .leaf("PolicyDocument", &url_encode(doc));
    Ok(x)
}

pub async fn delete_inline(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    let policy = check_name(&cx.p, "PolicyName", 128)?;
    cx.allow(
        &format!("Delete{}Policy", h.title()),
        cx.arn_of(h.lower(), name),
    )?;
    cx.iam
        .write(|d| {
            change_held(d, h, name, |_, inline| {
                inline
                    .remove(policy)
                    .map(|_| ())
                    .ok_or_else(|| no_such_inline(h, policy))
            })
        })
        .await?;
    Ok(Xml::new())
}

pub fn list_inline(cx: &Ctx<'_>, h: Holder) -> Result<Xml, ServiceError> {
    let name = holder_name(cx, h)?;
    cx.allow(
        &format!("List{}Policies", h.title()),
        cx.arn_of(h.lower(), name),
    )?;
    let view = cx.iam.view();
    let (_, inline) = held(&view.dir, h, name).ok_or_else(|| missing(h, name))?;
    let names: Vec<String> = inline.keys().cloned().collect();
    let (names, next) = page(&cx.p, names, |n| n.clone())?;
    let mut x = Xml::new();
    x.list("PolicyNames", &names, |x, n| {
        x.text(n);
    });
    truncation(&mut x, next);
    Ok(x)
}
