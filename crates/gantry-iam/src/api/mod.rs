//! IAM over its own protocol: Query requests (`Action=CreateUser&Version=2010-05-08&...`)
//! answered in XML, as `aws iam` and boto3's iam client expect. One module per resource; every
//! operation names its action (`iam:<Operation>`) and the ARNs it touches once, in [`route`].

mod groups;
mod policies;
mod roles;
mod simulate;
mod tags;
mod users;

use crate::directory::{arn, RoleView, View};
use crate::model::{iso8601, Tag};
use crate::Iam;
use gantry_core::query::{validation, Params, Xml};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Caller, Dispatch, Gate, Input, ServiceEntry, ServiceError};
use std::sync::Arc;

/// IAM's API version.
pub const VERSION: &str = "2010-05-08";
/// The XML namespace of IAM's answers.
pub const XML_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// IAM's entry: Query, version 2010-05-08, signing name `iam`, global.
pub fn entry(iam: &Arc<Iam>) -> ServiceEntry {
    crate::query_entry(
        "iam",
        VERSION,
        XML_NAMESPACE,
        Arc::new(Service(iam.clone())),
    )
}

struct Service(Arc<Iam>);

/// What an operation gets: the service, its parameters and the gate to authorize at.
pub(crate) struct Ctx<'a> {
    pub iam: &'a Iam,
    pub p: Params<'a>,
    pub gate: &'a Gate<'a>,
}

impl<'a> Ctx<'a> {
    /// Authorizes `iam:<op>` on `resource`.
    pub fn allow(&self, op: &str, resource: String) -> Result<Caller<'a>, ServiceError> {
        self.gate.authorize(&format!("iam:{op}"), &[resource])
    }

    pub fn arn(&self, kind: &str, path: &str, name: &str) -> String {
        arn(self.iam.account(), kind, path, name)
    }

    /// The ARN a request names by a user, role or group name (`kind` is `user`, `role` or
    /// `group`), path included when the entity exists.
    pub fn arn_of(&self, kind: &str, name: &str) -> String {
        let view = self.iam.view();
        let id = crate::model::id_of(name);
        let path = match kind {
            "user" => view.dir.users.get(&id).map(|u| u.path.clone()),
            "role" => view.dir.roles.get(&id).map(|r| r.path.clone()),
            "group" => view.dir.groups.get(&id).map(|g| g.path.clone()),
            _ => None,
        };
        self.arn(kind, path.as_deref().unwrap_or("/"), name)
    }
}

impl Dispatch for Service {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let Input::Query(pairs) = call.input else {
                return Err(validation(
                    "IAM takes Query requests (a form with Action and Version).",
                ));
            };
            let cx = Ctx {
                iam: &self.0,
                p: Params::new(pairs),
                gate: &call.gate,
            };
            route(&cx, call.operation).await.map(Xml::into_bytes)
        })
    }
}

/// The one table of IAM's operations.
async fn route(cx: &Ctx<'_>, op: &str) -> Result<Xml, ServiceError> {
    match op {
        "CreateUser" => users::create(cx).await,
        "GetUser" => users::get(cx),
        "ListUsers" => users::list(cx),
        "UpdateUser" => users::update(cx).await,
        "DeleteUser" => users::delete(cx).await,
        "TagUser" => tags::tag(cx, Holder::User).await,
        "UntagUser" => tags::untag(cx, Holder::User).await,
        "ListUserTags" => tags::list(cx, Holder::User),
        "CreateAccessKey" => users::create_key(cx).await,
        "ListAccessKeys" => users::list_keys(cx),
        "UpdateAccessKey" => users::update_key(cx).await,
        "DeleteAccessKey" => users::delete_key(cx).await,
        "CreateGroup" => groups::create(cx).await,
        "GetGroup" => groups::get(cx),
        "ListGroups" => groups::list(cx),
        "DeleteGroup" => groups::delete(cx).await,
        "AddUserToGroup" => groups::add_user(cx).await,
        "RemoveUserFromGroup" => groups::remove_user(cx).await,
        "ListGroupsForUser" => groups::list_for_user(cx),
        "CreateRole" => roles::create(cx).await,
        "GetRole" => roles::get(cx),
        "ListRoles" => roles::list(cx),
        "UpdateRole" => roles::update(cx).await,
        "DeleteRole" => roles::delete(cx).await,
        "UpdateAssumeRolePolicy" => roles::update_trust(cx).await,
        "TagRole" => tags::tag(cx, Holder::Role).await,
        "UntagRole" => tags::untag(cx, Holder::Role).await,
        "ListRoleTags" => tags::list(cx, Holder::Role),
        "CreatePolicy" => policies::create(cx).await,
        "GetPolicy" => policies::get(cx),
        "ListPolicies" => policies::list(cx),
        "DeletePolicy" => policies::delete(cx).await,
        "CreatePolicyVersion" => policies::create_version(cx).await,
        "GetPolicyVersion" => policies::get_version(cx),
        "ListPolicyVersions" => policies::list_versions(cx),
        "DeletePolicyVersion" => policies::delete_version(cx).await,
        "SetDefaultPolicyVersion" => policies::set_default_version(cx).await,
        "AttachUserPolicy" => policies::attach(cx, Holder::User).await,
        "AttachGroupPolicy" => policies::attach(cx, Holder::Group).await,
        "AttachRolePolicy" => policies::attach(cx, Holder::Role).await,
        "DetachUserPolicy" => policies::detach(cx, Holder::User).await,
        "DetachGroupPolicy" => policies::detach(cx, Holder::Group).await,
        "DetachRolePolicy" => policies::detach(cx, Holder::Role).await,
        "ListAttachedUserPolicies" => policies::list_attached(cx, Holder::User),
        "ListAttachedGroupPolicies" => policies::list_attached(cx, Holder::Group),
        "ListAttachedRolePolicies" => policies::list_attached(cx, Holder::Role),
        "PutUserPolicy" => policies::put_inline(cx, Holder::User).await,
        "PutGroupPolicy" => policies::put_inline(cx, Holder::Group).await,
        "PutRolePolicy" => policies::put_inline(cx, Holder::Role).await,
        "GetUserPolicy" => policies::get_inline(cx, Holder::User),
        "GetGroupPolicy" => policies::get_inline(cx, Holder::Group),
        "GetRolePolicy" => policies::get_inline(cx, Holder::Role),
        "DeleteUserPolicy" => policies::delete_inline(cx, Holder::User).await,
        "DeleteGroupPolicy" => policies::delete_inline(cx, Holder::Group).await,
        "DeleteRolePolicy" => policies::delete_inline(cx, Holder::Role).await,
        "ListUserPolicies" => policies::list_inline(cx, Holder::User),
        "ListGroupPolicies" => policies::list_inline(cx, Holder::Group),
        "ListRolePolicies" => policies::list_inline(cx, Holder::Role),
        "SimulatePrincipalPolicy" => simulate::principal(cx),
        other => Err(ServiceError::new(
            "InvalidAction",
            400,
            format!("gantry does not serve the IAM action {other}: see the README's access-control section for the operations it does."),
        )),
    }
}

/// Which kind of entity holds a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    User,
    Group,
    Role,
}

impl Holder {
    /// `User`, `Group`, `Role`: as in `UserName`, `AttachUserPolicy`.
    pub fn title(self) -> &'static str {
        match self {
            Holder::User => "User",
            Holder::Group => "Group",
            Holder::Role => "Role",
        }
    }

    pub fn lower(self) -> &'static str {
        match self {
            Holder::User => "user",
            Holder::Group => "group",
            Holder::Role => "role",
        }
    }
}

// ---- errors, in IAM's shapes ----

pub(crate) fn no_such(message: impl Into<String>) -> ServiceError {
    ServiceError::new("NoSuchEntity", 404, message)
}

pub(crate) fn exists(message: impl Into<String>) -> ServiceError {
    ServiceError::new("EntityAlreadyExists", 409, message)
}

pub(crate) fn conflict(message: impl Into<String>) -> ServiceError {
    ServiceError::new("DeleteConflict", 409, message)
}

pub(crate) fn limit(message: impl Into<String>) -> ServiceError {
    ServiceError::new("LimitExceeded", 409, message)
}

pub(crate) fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidInput", 400, message)
}

pub(crate) fn malformed(message: impl Into<String>) -> ServiceError {
    ServiceError::new("MalformedPolicyDocument", 400, message)
}

// ---- validation ----

/// A user, role, group or policy name: `[\w+=,.@-]`, 1 to `max` characters.
pub(crate) fn check_name<'a>(
    p: &Params<'a>,
    param: &str,
    max: usize,
) -> Result<&'a str, ServiceError> {
    let v = p.required(param)?;
    let ok = !v.is_empty()
        && v.chars().count() <= max
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !ok {
        return Err(validation(format!(
            "The specified value for {} is invalid. It must contain only alphanumeric characters and/or the following: +=,.@_- and be 1 to {max} characters long.",
            lower_first(param)
        )));
    }
    Ok(v)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A path: `/` or `/a/b/`, at most 512 characters.
pub(crate) fn check_path(p: &Params<'_>, param: &str) -> Result<String, ServiceError> {
    let v = p.get(param).unwrap_or("/");
    let ok = v.starts_with('/')
        && v.ends_with('/')
        && v.len() <= 512
        && v.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if !ok {
        return Err(validation(format!(
            "The specified value for {} is invalid. It must begin and end with / and contain only printable ASCII characters.",
            lower_first(param)
        )));
    }
    Ok(v.to_string())
}

/// The tags of a request (`Tags.member.N.Key/Value`), checked as IAM checks them.
pub(crate) fn read_tags(p: &Params<'_>) -> Result<Vec<Tag>, ServiceError> {
    let mut tags: Vec<Tag> = Vec::new();
    for f in p.structs("Tags") {
        let (Some(k), Some(v)) = (f.get("Key"), f.get("Value")) else {
            return Err(validation("Each tag needs a Key and a Value."));
        };
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(validation(
                "Tag keys must be 1 to 128 characters and values at most 256.",
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(
                "Tag keys beginning with aws: are reserved for AWS use.",
            ));
        }
        if tags.iter().any(|t| t.key.eq_ignore_ascii_case(k)) {
            return Err(invalid(format!(
                "Duplicate tag keys found: {k}. Tag keys are case insensitive."
            )));
        }
        tags.push(Tag {
            key: k.to_string(),
            value: v.to_string(),
        });
    }
    Ok(tags)
}

/// Merges `new` into `tags` (keys compared without case), keeping at most 50.
pub(crate) fn merge_tags(tags: &mut Vec<Tag>, new: Vec<Tag>) -> Result<(), ServiceError> {
    for t in new {
        match tags.iter_mut().find(|x| x.key.eq_ignore_ascii_case(&t.key)) {
            Some(x) => x.value = t.value,
            None => tags.push(t),
        }
    }
    if tags.len() > 50 {
        return Err(limit(
            "The number of tags has reached the maximum limit of 50.",
        ));
    }
    Ok(())
}

/// Permissions boundaries are not applied: a request that sets one is refused rather than
/// left believing it limits anything.
pub(crate) fn refuse_boundary(p: &Params<'_>) -> Result<(), ServiceError> {
    if p.get("PermissionsBoundary").is_some() {
        return Err(invalid(
            "gantry does not apply permissions boundaries; leave PermissionsBoundary out.",
        ));
    }
    Ok(())
}

/// Checks an identity-based policy document.
pub(crate) fn check_identity_document(doc: &str) -> Result<(), ServiceError> {
    gantry_policy::Policy::identity(doc)
        .map(|_| ())
        .map_err(|e| malformed(e.message))
}

/// Checks a trust policy document.
pub(crate) fn check_trust_document(doc: &str) -> Result<(), ServiceError> {
    gantry_policy::Policy::trust(doc)
        .map(|_| ())
        .map_err(|e| malformed(e.message))
}

/// Policy documents leave IAM URL-encoded (botocore decodes them).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- pages ----

/// One page of `items` (sorted by `key`) after `Marker`, at most `MaxItems` (default 100);
/// the marker of the next page when there is one.
pub(crate) fn page<T>(
    p: &Params<'_>,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), ServiceError> {
    let max = p.int("MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max) {
        return Err(validation("MaxItems must be between 1 and 1000."));
    }
    let mut items: Vec<T> = match p.get("Marker") {
        Some(m) => items.into_iter().filter(|t| key(t).as_str() >= m).collect(),
        None => items,
    };
    let next = if items.len() > max as usize {
        let rest = items.split_off(max as usize);
        rest.first().map(&key)
    } else {
        None
    };
    Ok((items, next))
}

/// `<IsTruncated>` and `<Marker>` of a page.
pub(crate) fn truncation(x: &mut Xml, next: Option<String>) {
    x.leaf("IsTruncated", if next.is_some() { "true" } else { "false" });
    x.opt("Marker", next.as_deref());
}

// ---- shapes ----

pub(crate) fn tags_xml(x: &mut Xml, tags: &[Tag]) {
    if !tags.is_empty() {
        x.list("Tags", tags, |x, t| {
            x.leaf("Key", &t.key).leaf("Value", &t.value);
        });
    }
}

pub(crate) fn user_xml(x: &mut Xml, account: &str, u: &crate::model::User, with_tags: bool) {
    x.leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &arn(account, "user", &u.path, &u.name))
        .leaf("CreateDate", &iso8601(u.created));
    if with_tags {
        tags_xml(x, &u.tags);
    }
}

pub(crate) fn group_xml(x: &mut Xml, account: &str, g: &crate::model::Group) {
    x.leaf("Path", &g.path)
        .leaf("GroupName", &g.name)
        .leaf("GroupId", &g.id)
        .leaf("Arn", &arn(account, "group", &g.path, &g.name))
        .leaf("CreateDate", &iso8601(g.created));
}

pub(crate) fn role_xml(x: &mut Xml, account: &str, r: &crate::model::Role) {
    x.leaf("Path", &r.path)
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &arn(account, "role", &r.path, &r.name))
        .leaf("CreateDate", &iso8601(r.created))
        .leaf("AssumeRolePolicyDocument", &url_encode(&r.trust))
        .opt("Description", r.description.as_deref())
        .leaf("MaxSessionDuration", &r.max_session.to_string());
    tags_xml(x, &r.tags);
}

/// The role an ARN names, if it exists (path and all).
pub(crate) fn role_by_arn<'v>(view: &'v View, role_arn: &str) -> Option<&'v RoleView> {
    let name = role_arn.rsplit('/').next()?;
    view.roles
        .get(&crate::model::id_of(name))
        .filter(|r| r.arn == role_arn)
}
