//! The account's identities in memory: every IAM record ([`Directory`]), and the view the
//! front door reads on every request ([`View`]): which key belongs to whom, and each
//! principal's policies compiled. The view is rebuilt once per change, never per request.

use crate::managed::AwsPolicy;
use crate::model::*;
use gantry_auth::{Secret, SessionToken};
use gantry_core::ServiceError;
use gantry_policy::Policy;
use gantry_store::Txn;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Every IAM record, by store id.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub users: BTreeMap<String, User>,
    pub keys: BTreeMap<String, AccessKey>,
    pub groups: BTreeMap<String, Group>,
    pub roles: BTreeMap<String, Role>,
    pub policies: BTreeMap<String, ManagedPolicy>,
    pub sessions: BTreeMap<String, Session>,
}

/// A change being made: the directory as it will be, and the writes that make it so.
pub struct Draft {
    pub dir: Directory,
    txn: Txn,
    pub now: i64,
}

macro_rules! setters {
    ($($put:ident, $del:ident, $update:ident, $field:ident, $kind:ident, $t:ty;)*) => {$(
        /// Changes the record `id` with `f` and writes it; `missing` when there is none.
        pub fn $update<T>(
            &mut self,
            id: &str,
            missing: impl FnOnce() -> ServiceError,
            f: impl FnOnce(&mut $t) -> Result<T, ServiceError>,
        ) -> Result<T, ServiceError> {
            let mut value = self.dir.$field.get(id).cloned().ok_or_else(missing)?;
            let out = f(&mut value)?;
            self.$put(id, value);
            Ok(out)
        }

        /// Writes the record (in memory and in the transaction).
        pub fn $put(&mut self, id: &str, value: $t) {
            self.txn = $kind.put(std::mem::take(&mut self.txn), id, &value);
            self.dir.$field.insert(id.to_string(), value);
        }

        /// Deletes the record (in memory and in the transaction).
        pub fn $del(&mut self, id: &str) {
            self.txn = $kind.delete(std::mem::take(&mut self.txn), id);
            self.dir.$field.remove(id);
        }
    )*};
}

impl Draft {
    pub fn new(dir: Directory, now: i64) -> Draft {
        Draft {
            dir,
            txn: Txn::new(),
            now,
        }
    }

    setters! {
        put_user, delete_user, update_user, users, USERS, User;
        put_key, delete_key, update_key, keys, ACCESS_KEYS, AccessKey;
        put_group, delete_group, update_group, groups, GROUPS, Group;
        put_role, delete_role, update_role, roles, ROLES, Role;
        put_policy, delete_policy, update_policy, policies, POLICIES, ManagedPolicy;
        put_session, delete_session, update_session, sessions, SESSIONS, Session;
    }

    pub fn into_parts(self) -> (Directory, Txn) {
        (self.dir, self.txn)
    }
}

/// Where a policy of a principal comes from, for SimulatePrincipalPolicy's answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The managed policy's ARN, or the inline policy's name.
    pub id: String,
    /// `user`, `group`, `role` (inline), `aws-managed`, `user-managed`.
    pub kind: &'static str,
}

/// A principal's identity-based policies, compiled, and the condition keys it brings.
#[derive(Debug, Default)]
pub struct Grants {
    pub sources: Vec<Source>,
    pub policies: Vec<Policy>,
    /// `aws:username`, `aws:principaltag/<key>`, ... (keys lower-case).
    pub facts: Vec<(String, Vec<String>)>,
    /// The ARN `aws:PrincipalArn` names (for role sessions: the role's).
    pub principal_arn: String,
}

/// A role as AssumeRole and PassRole see it.
#[derive(Debug)]
pub struct RoleView {
    pub arn: String,
    pub name: String,
    pub id: String,
    pub trust: Policy,
    pub max_session: i64,
}

/// What every request reads: a consistent picture of the directory, compiled.
#[derive(Debug, Default)]
pub struct View {
    pub dir: Directory,
    /// Every key that may sign: configured, IAM users' active keys, STS sessions.
    pub keys: HashMap<String, Secret>,
    /// By `user:<id>` and `role:<id>`.
    pub grants: HashMap<String, Arc<Grants>>,
    /// By role id.
    pub roles: HashMap<String, RoleView>,
    /// The sessions issued for ECS tasks (access key ids), by task ARN.
    pub task_sessions: HashMap<String, Vec<String>>,
}

/// Compiled policies by document text: a document is compiled once, however many principals
/// it reaches and however often the view is rebuilt.
#[derive(Debug, Default)]
pub struct Compiled {
    identity: HashMap<String, Policy>,
    trust: HashMap<String, Policy>,
}

impl Compiled {
    fn identity(&mut self, doc: &str) -> Option<Policy> {
        if let Some(p) = self.identity.get(doc) {
            return Some(p.clone());
        }
        match Policy::identity(doc) {
            Ok(p) => {
                self.identity.insert(doc.to_string(), p.clone());
                Some(p)
            }
            Err(e) => {
                // Documents are validated before they are stored; one that fails now grants
                // nothing rather than stopping the server.
                tracing::warn!(error = %e, "a stored policy document does not compile");
                None
            }
        }
    }

    fn trust(&mut self, doc: &str) -> Option<Policy> {
        if let Some(p) = self.trust.get(doc) {
            return Some(p.clone());
        }
        let p = Policy::trust(doc).ok()?;
        self.trust.insert(doc.to_string(), p.clone());
        Some(p)
    }

    /// Forgets documents the view no longer uses.
    fn retain(&mut self, used: &std::collections::HashSet<String>) {
        self.identity.retain(|d, _| used.contains(d));
        self.trust.retain(|d, _| used.contains(d));
    }
}

/// The ARN of a user, role, group or customer policy: `arn:aws:iam::<account>:<kind><path><name>`.
pub fn arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

/// Everything the view is built from besides the directory.
pub struct Inputs<'a> {
    pub account: &'a str,
    pub configured: &'a gantry_auth::KeySet,
    pub aws: &'a [AwsPolicy],
}

struct Builder<'a> {
    inputs: &'a Inputs<'a>,
    dir: &'a Directory,
    compiled: &'a mut Compiled,
    used: std::collections::HashSet<String>,
}

impl Builder<'_> {
    /// The default document of the managed policy `arn`, and whether AWS manages it.
    fn managed(&self, policy_arn: &str) -> Option<(&str, &'static str)> {
        if let Some(p) = self.inputs.aws.iter().find(|p| p.arn == policy_arn) {
            return Some((p.document.as_str(), "aws-managed"));
        }
        let name = policy_arn.rsplit('/').next()?;
        let p = self.dir.policies.get(&id_of(name))?;
        (arn(self.inputs.account, "policy", &p.path, &p.name) == policy_arn)
            .then(|| p.default_document())
            .flatten()
            .map(|d| (d, "user-managed"))
    }

    fn add_attached(&mut self, g: &mut Grants, attached: &[String]) {
        for a in attached {
            let Some((doc, kind)) = self.managed(a) else {
                continue;
            };
            let doc = doc.to_string();
            if let Some(p) = self.compiled.identity(&doc) {
                g.sources.push(Source {
                    id: a.clone(),
                    kind,
                });
                g.policies.push(p);
                self.used.insert(doc);
            }
        }
    }

    fn add_inline(&mut self, g: &mut Grants, inline: &Inline, kind: &'static str) {
        for (name, doc) in inline {
            if let Some(p) = self.compiled.identity(doc) {
                g.sources.push(Source {
                    id: name.clone(),
                    kind,
                });
                g.policies.push(p);
                self.used.insert(doc.clone());
            }
        }
    }

    fn tag_facts(g: &mut Grants, tags: &[Tag]) {
        for t in tags {
            g.facts.push((
                format!("aws:principaltag/{}", t.key.to_ascii_lowercase()),
                vec![t.value.clone()],
            ));
        }
    }

    fn user(&mut self, u: &User) -> Grants {
        let mut g = Grants {
            principal_arn: arn(self.inputs.account, "user", &u.path, &u.name),
            ..Default::default()
        };
        self.add_attached(&mut g, &u.attached);
        self.add_inline(&mut g, &u.inline, "user");
        for gid in &u.groups {
            if let Some(group) = self.dir.groups.get(gid) {
                self.add_attached(&mut g, &group.attached);
                self.add_inline(&mut g, &group.inline, "group");
            }
        }
        g.facts.push(("aws:username".into(), vec![u.name.clone()]));
        g.facts
            .push(("aws:principaltype".into(), vec!["User".to_string()]));
        Self::tag_facts(&mut g, &u.tags);
        g
    }

    fn role(&mut self, r: &Role) -> Grants {
        let mut g = Grants {
            principal_arn: arn(self.inputs.account, "role", &r.path, &r.name),
            ..Default::default()
        };
        self.add_attached(&mut g, &r.attached);
        self.add_inline(&mut g, &r.inline, "role");
        g.facts
            .push(("aws:principaltype".into(), vec!["AssumedRole".to_string()]));
        Self::tag_facts(&mut g, &r.tags);
        g
    }
}

/// The grants of a group alone (what SimulatePrincipalPolicy on a group evaluates).
pub fn group_grants(
    inputs: &Inputs<'_>,
    dir: &Directory,
    compiled: &mut Compiled,
    group: &Group,
) -> Grants {
    let mut b = Builder {
        inputs,
        dir,
        compiled,
        used: Default::default(),
    };
    let mut g = Grants {
        principal_arn: arn(inputs.account, "group", &group.path, &group.name),
        ..Default::default()
    };
    b.add_attached(&mut g, &group.attached);
    b.add_inline(&mut g, &group.inline, "group");
    g
}

/// Builds the view of `dir`.
pub fn build(dir: Directory, inputs: &Inputs<'_>, compiled: &mut Compiled) -> View {
    let mut keys: HashMap<String, Secret> = HashMap::new();
    for (id, s) in inputs.configured.iter() {
        let mut s = s.clone();
        if let Some(name) = s.user.strip_prefix("user/") {
            if let Some(u) = dir.users.get(&id_of(name)) {
                s.user = format!("user{}{}", u.path, u.name);
                s.user_id = Some(u.id.clone());
            }
        }
        keys.insert(id.clone(), s);
    }
    for k in dir.keys.values().filter(|k| k.active) {
        if let Some(u) = dir.users.get(&id_of(&k.user)) {
            keys.insert(
                k.id.clone(),
                Secret {
                    secret_access_key: k.secret.clone(),
                    user: format!("user{}{}", u.path, u.name),
                    user_id: Some(u.id.clone()),
                    session: None,
                },
            );
        }
    }
    let mut task_sessions: HashMap<String, Vec<String>> = HashMap::new();
    for s in dir.sessions.values() {
        if let Some(task) = &s.task {
            task_sessions
                .entry(task.clone())
                .or_default()
                .push(s.access_key_id.clone());
        }
        keys.insert(
            s.access_key_id.clone(),
            Secret {
                secret_access_key: s.secret.clone(),
                user: s.owner.clone(),
                user_id: Some(s.user_id.clone()),
                session: Some(SessionToken {
                    token: s.token.clone(),
                    expires_at: s.expires_at,
                }),
            },
        );
    }
    let mut b = Builder {
        inputs,
        dir: &dir,
        compiled,
        used: Default::default(),
    };
    let mut grants = HashMap::new();
    for (id, u) in &dir.users {
        grants.insert(format!("user:{id}"), Arc::new(b.user(u)));
    }
    let mut roles = HashMap::new();
    for (id, r) in &dir.roles {
        grants.insert(format!("role:{id}"), Arc::new(b.role(r)));
        if let Some(trust) = b.compiled.trust(&r.trust) {
            b.used.insert(r.trust.clone());
            roles.insert(
                id.clone(),
                RoleView {
                    arn: arn(inputs.account, "role", &r.path, &r.name),
                    name: r.name.clone(),
                    id: r.id.clone(),
                    trust,
                    max_session: r.max_session,
                },
            );
        }
    }
    let used = std::mem::take(&mut b.used);
    compiled.retain(&used);
    View {
        dir,
        keys,
        grants,
        roles,
        task_sessions,
    }
}

/// The `grants` key of a principal ARN: `user:<id>` for IAM users, `role:<id>` for role
/// sessions; None for the root and for ARNs of other accounts.
pub fn grants_key(principal_arn: &str) -> Option<String> {
    let rest = principal_arn.split(':').nth(5)?;
    if let Some(user) = rest.strip_prefix("user/") {
        return Some(format!("user:{}", id_of(user.rsplit('/').next()?)));
    }
    if let Some(session) = rest.strip_prefix("assumed-role/") {
        return Some(format!("role:{}", id_of(session.split('/').next()?)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_arns_name_their_grants() {
        assert_eq!(
            grants_key("arn:aws:iam::1:user/dev").as_deref(),
            Some("user:dev")
        );
        assert_eq!(
            grants_key("arn:aws:iam::1:user/team/Dev").as_deref(),
            Some("user:dev")
        );
        assert_eq!(
            grants_key("arn:aws:sts::1:assumed-role/App/s1").as_deref(),
            Some("role:app")
        );
        assert_eq!(grants_key("arn:aws:iam::1:root"), None);
        assert_eq!(grants_key("garbage"), None);
    }
}
