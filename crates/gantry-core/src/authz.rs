//! The authorization hook every call of every service passes before its handler runs.
//!
//! A dispatcher gets a [`Gate`] with each call. Handlers take a [`Caller`], and the only way to
//! get one for a request is [`Gate::authorize`] with the operation's IAM action and the ARNs it
//! touches, so a handler cannot run unauthorized. The [`Authorizer`] decides: today
//! [`AdminOnly`] (every configured key is the account's administrator); the IAM issue brings a
//! policy engine behind the same trait.

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
    /// The principal of a configured access key: the root user or a named user, both admins.
    pub fn from_key(account: &str, identity: &gantry_auth::Identity) -> Principal {
        let (arn, user_id) = if identity.user == "root" {
            (format!("arn:aws:iam::{account}:root"), account.to_string())
        } else {
            (
                format!("arn:aws:iam::{account}:user/{}", identity.user),
                identity.access_key_id.clone(),
            )
        };
        Principal {
            account: account.to_string(),
            arn,
            user_id,
            access_key_id: identity.access_key_id.clone(),
            admin: true,
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

/// An IAM action with the resources it is asked for, as in `ecs:RunTask` on a cluster ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub action: &'a str,
    /// ARNs; `*` for actions that name no resource (List*, Create* of a new name).
    pub resources: &'a [String],
    pub context: &'a AuthzContext,
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
}

/// Allows the account's administrators everything, and nobody else anything: the rule until
/// IAM policies exist. Every key in the server's key set is an administrator.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdminOnly;

impl Authorizer for AdminOnly {
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
        let request = Request {
            action,
            resources,
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
        let root = gantry_auth::Identity {
            access_key_id: "AK1".into(),
            user: "root".into(),
        };
        let ci = gantry_auth::Identity {
            access_key_id: "AK2".into(),
            user: "ci".into(),
        };
        assert_eq!(Principal::from_key("1", &root).arn, "arn:aws:iam::1:root");
        let p = Principal::from_key("1", &ci);
        assert_eq!(p.arn, "arn:aws:iam::1:user/ci");
    }
}
