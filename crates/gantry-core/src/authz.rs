//! The authorization hook every call of every service passes before its handler runs.
//!
//! A dispatcher gets a [`Gate`] with each call. Handlers take a [`Caller`], and the only way to
//! get one for a request is [`Gate::authorize`] with the operation's IAM action and the ARNs it
//! touches, so a handler cannot run unauthorized. The [`Authorizer`] decides: today
//! [`AdminOnly`] (every key is the account's administrator) where no IAM is assembled, and
//! gantry-iam's policy engine in the server people run.

use crate::error::ServiceError;
use std::net::IpAddr;

/// Who signed a request, as IAM names principals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    /// `arn:aws:iam::<account>:root`, `...:user/<name>`, `arn:aws:sts::<account>:assumed-role/...`.
    pub arn: String,
    /// What GetCallerIdentity answers as `UserId`.
    pub user_id: String,
    pub access_key_id: String,
    /// The account's administrator: allowed everything, as a root key is.
    pub admin: bool,
}

impl Principal {
    /// The principal of a verified key, from its owner (`root`, `user/<name>`,
    /// `assumed-role/<role>/<session>`; a bare name is a user's). Only the root is an admin.
    pub fn from_key(account: &str, identity: &gantry_auth::Identity) -> Principal {
        let who = identity.user.as_str();
        let (arn, default_id) = if who == "root" {
            (format!("arn:aws:iam::{account}:root"), account.to_string())
        } else if let Some(rest) = who.strip_prefix("assumed-role/") {
            (
                format!("arn:aws:sts::{account}:{who}"),
                rest.replace('/', ":"),
            )
        } else {
            let name = who.strip_prefix("user/").unwrap_or(who);
            (
                format!("arn:aws:iam::{account}:user/{name}"),
                identity.access_key_id.clone(),
            )
        };
        Principal {
            account: account.to_string(),
            arn,
            user_id: identity.user_id.clone().unwrap_or(default_id),
            access_key_id: identity.access_key_id.clone(),
            admin: who == "root",
        }
    }

    /// The control plane itself, for work it does on its own behalf (never for a request).
    pub fn system(account: &str) -> Principal {
        Principal {
            account: account.to_string(),
            arn: format!("arn:aws:iam::{account}:root"),
            user_id: account.to_string(),
            access_key_id: String::new(),
            admin: true,
        }
    }
}

/// What a policy's conditions may look at besides the action and resources (`aws:*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzContext {
    /// `aws:RequestedRegion`: the region of the request's SigV4 scope.
    pub region: String,
    /// `aws:SourceIp`.
    pub source_ip: Option<IpAddr>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
    /// `aws:CurrentTime`, Unix seconds.
    pub current_time: i64,
}

/// An IAM action with the resources it is asked for, as in `ecs:RunTask` on a task definition.
pub struct Request<'a> {
    pub action: &'a str,
    /// ARNs; `*` for actions that name no resource (List*, Create* of a new name).
    pub resources: &'a [String],
    /// The resources' tags, for `aws:ResourceTag/<key>` and the service's own
    /// `<service>:ResourceTag/<key>`: asked only when a condition needs them.
    pub tags: &'a dyn TagSource,
    /// Condition keys the operation supplies: `ecs:cluster`, `aws:RequestTag/<key>`,
    /// `aws:TagKeys`, `iam:PassedToService`, ...
    pub keys: &'a [(String, Vec<String>)],
    pub context: &'a AuthzContext,
}

/// Where the tags of the resources a request names come from (the service's own records).
pub trait TagSource: Sync {
    /// The tags of the resource `arn` (none when it has none or does not exist).
    fn tags_of(&self, arn: &str) -> Vec<(String, String)>;
}

/// For services whose resources carry no tags.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTags;

impl TagSource for NoTags {
    fn tags_of(&self, _arn: &str) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// What an operation asks for beyond its action: resources and condition keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ask {
    pub resources: Vec<String>,
    pub keys: Vec<(String, Vec<String>)>,
}

impl Ask {
    /// Resources without tags or keys.
    pub fn on(resources: Vec<String>) -> Ask {
        Ask {
            resources,
            ..Default::default()
        }
    }

    /// Adds a condition key with its values.
    pub fn key(mut self, name: impl Into<String>, values: Vec<String>) -> Ask {
        self.keys.push((name.into(), values));
        self
    }

    /// Adds the keys of tags a request brings: `aws:RequestTag/<key>` each and `aws:TagKeys`.
    pub fn request_tags<'t>(mut self, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> Ask {
        let mut names = Vec::new();
        for (k, v) in tags {
            self.keys
                .push((format!("aws:RequestTag/{k}"), vec![v.to_string()]));
            names.push(k.to_string());
        }
        if !names.is_empty() {
            self.keys.push(("aws:TagKeys".into(), names));
        }
        self
    }
}

/// Why a request was refused, for the message the caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The resource the denial is about.
    pub resource: String,
    /// `because no identity-based policy allows the ecs:RunTask action`, and the like.
    pub reason: String,
}

/// Decides every request of every service.
pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, principal: &Principal, request: &Request<'_>) -> Result<(), Denied>;

    /// Whether `role_arn` is a role that `service` (`ecs-tasks.amazonaws.com`) may assume:
    /// it exists and its trust policy allows the service. `Err` says why not.
    fn role_trusts(&self, role_arn: &str, service: &str) -> Result<(), String>;
}

/// Allows the account's root everything, and nobody else anything: the rule of a server
/// assembled without IAM (in-process tests). It knows no roles, so it takes every role ARN as
/// trusted: without IAM there is nothing to check them against.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdminOnly;

impl Authorizer for AdminOnly {
    fn role_trusts(&self, _role_arn: &str, _service: &str) -> Result<(), String> {
        Ok(())
    }

    fn authorize(&self, principal: &Principal, request: &Request<'_>) -> Result<(), Denied> {
        if principal.admin {
            return Ok(());
        }
        Err(Denied {
            resource: request
                .resources
                .first()
                .cloned()
                .unwrap_or_else(|| "*".into()),
            reason: format!(
                "because no identity-based policy allows the {} action",
                request.action
            ),
        })
    }
}

/// How a service names a refused authorization: ECS `AccessDeniedException` with 400, IAM and
/// STS `AccessDenied` with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialShape {
    pub code: &'static str,
    pub status: u16,
}

/// The checkpoint a request passes: holds who called and what decides.
pub struct Gate<'a> {
    principal: &'a Principal,
    authorizer: &'a dyn Authorizer,
    context: &'a AuthzContext,
    denial: DenialShape,
}

impl<'a> Gate<'a> {
    pub fn new(
        principal: &'a Principal,
        authorizer: &'a dyn Authorizer,
        context: &'a AuthzContext,
        denial: DenialShape,
    ) -> Self {
        Gate {
            principal,
            authorizer,
            context,
            denial,
        }
    }

    /// Asks the authorizer whether the caller may perform `action` on `resources`; on yes, the
    /// [`Caller`] the handler needs.
    pub fn authorize(
        &self,
        action: &str,
        resources: &[String],
    ) -> Result<Caller<'a>, ServiceError> {
        self.check(action, resources, &[], &NoTags)
    }

    /// As [`Self::authorize`], with the operation's condition keys and its resources' tags.
    pub fn authorize_ask(
        &self,
        action: &str,
        ask: &Ask,
        tags: &dyn TagSource,
    ) -> Result<Caller<'a>, ServiceError> {
        self.check(action, &ask.resources, &ask.keys, tags)
    }

    fn check(
        &self,
        action: &str,
        resources: &[String],
        keys: &[(String, Vec<String>)],
        tags: &dyn TagSource,
    ) -> Result<Caller<'a>, ServiceError> {
        let request = Request {
            action,
            resources,
            keys,
            tags,
            context: self.context,
        };
        match self.authorizer.authorize(self.principal, &request) {
            Ok(()) => Ok(Caller {
                principal: self.principal,
            }),
            Err(d) => Err(ServiceError::new(
                self.denial.code,
                self.denial.status,
                format!(
                    "User: {} is not authorized to perform: {action} on resource: {} {}",
                    self.principal.arn, d.resource, d.reason
                ),
            )),
        }
    }

    /// The caller of an operation AWS serves to every authenticated principal whatever its
    /// policies say (`sts:GetCallerIdentity`, `sts:GetSessionToken`): passing the signature
    /// check was the authorization.
    pub fn authenticated_only(&self) -> Caller<'a> {
        Caller {
            principal: self.principal,
        }
    }

    /// Who is asking (not yet authorized for anything): what operations that default to the
    /// caller (IAM's GetUser without a name) need before they know their resource.
    pub fn principal(&self) -> &'a Principal {
        self.principal
    }

    /// Whether `role_arn` exists and trusts `service` (see [`Authorizer::role_trusts`]).
    pub fn role_trusts(&self, role_arn: &str, service: &str) -> Result<(), String> {
        self.authorizer.role_trusts(role_arn, service)
    }
}

/// An authorized caller: proof that the hook said yes.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    principal: &'a Principal,
}

impl<'a> Caller<'a> {
    /// A caller for the control plane's own work (creating the default cluster, the service
    /// scheduler's launches), which no request asked for.
    pub fn system(principal: &'a Principal) -> Caller<'a> {
        Caller { principal }
    }

    pub fn principal(&self) -> &'a Principal {
        self.principal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> AuthzContext {
        AuthzContext {
            region: "us-east-1".into(),
            source_ip: None,
            secure_transport: false,
            current_time: 0,
        }
    }

    #[test]
    fn admins_pass_and_others_are_denied_in_the_service_shape() {
        let admin = Principal::system("123456789012");
        let mut other = admin.clone();
        other.admin = false;
        other.arn = "arn:aws:iam::123456789012:user/bob".into();
        let c = ctx();
        let shape = DenialShape {
            code: "AccessDeniedException",
            status: 400,
        };
        let res = ["arn:aws:ecs:us-east-1:123456789012:cluster/x".to_string()];
        assert!(Gate::new(&admin, &AdminOnly, &c, shape)
            .authorize("ecs:DeleteCluster", &res)
            .is_ok());
        let e = Gate::new(&other, &AdminOnly, &c, shape)
            .authorize("ecs:DeleteCluster", &res)
            .unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("AccessDeniedException", 400));
        assert!(e.message.contains("user/bob is not authorized to perform: ecs:DeleteCluster on resource: arn:aws:ecs:us-east-1:123456789012:cluster/x"), "{}", e.message);
    }

    #[test]
    fn principals_of_keys() {
        let id = |user: &str| gantry_auth::Identity {
            access_key_id: "AK1".into(),
            user: user.into(),
            user_id: None,
            temporary: false,
        };
        let root = Principal::from_key("1", &id("root"));
        assert_eq!(
            (root.arn.as_str(), root.admin),
            ("arn:aws:iam::1:root", true)
        );
        let p = Principal::from_key("1", &id("ci"));
        assert_eq!((p.arn.as_str(), p.admin), ("arn:aws:iam::1:user/ci", false));
        assert_eq!(
            Principal::from_key("1", &id("user/dev")).arn,
            "arn:aws:iam::1:user/dev"
        );
        let s = Principal::from_key("1", &id("assumed-role/app/s1"));
        assert_eq!(s.arn, "arn:aws:sts::1:assumed-role/app/s1");
        assert_eq!(s.user_id, "app:s1");
    }
}
