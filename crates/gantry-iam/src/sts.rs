//! STS (`sts`, API version 2011-06-15, awsQuery): who is calling, and temporary credentials:
//! AssumeRole (the role's trust policy decides, with the caller's own policies when the trust
//! policy names only the account) and GetSessionToken.

use crate::api::role_by_arn;
use crate::model::{id_of, iso8601, new_key_id, new_secret, Session};
use crate::Iam;
use gantry_core::query::{validation, Params, Xml};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, Gate, Input, ServiceEntry, ServiceError};
use gantry_policy::{evaluate, Decision, Query, Who};
use std::sync::Arc;

/// STS's API version, which Query requests name in `Version`.
pub const VERSION: &str = "2011-06-15";
/// The XML namespace of STS's answers.
pub const XML_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The operations of STS's model, so that unknown names are told from unbuilt ones.
const OPERATIONS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetCallerIdentity",
    "GetDelegatedAccessToken",
    "GetFederationToken",
    "GetSessionToken",
    "GetWebIdentityToken",
];

/// A role session assuming another role may last at most an hour (AWS's role chaining).
const CHAINED_MAX_SECS: i64 = 3600;

struct Sts(Arc<Iam>);

fn access_denied(message: String) -> ServiceError {
    ServiceError::new("AccessDenied", 403, message)
}

impl Dispatch for Sts {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let Input::Query(pairs) = call.input else {
                return Err(validation(
                    "STS takes Query requests (a form with Action and Version).",
                ));
            };
            let p = Params::new(pairs);
            let x = match call.operation {
                "GetCallerIdentity" => caller_identity(&call.gate),
                "AssumeRole" => assume_role(&self.0, &p, &call.gate).await?,
                "GetSessionToken" => session_token(&self.0, &p, &call.gate).await?,
                op if OPERATIONS.contains(&op) => {
                    return Err(ServiceError::new(
                        "InvalidAction",
                        400,
                        format!("gantry does not serve the STS action {op}: it serves GetCallerIdentity, AssumeRole and GetSessionToken."),
                    ))
                }
                op => {
                    return Err(ServiceError::new(
                        "InvalidAction",
                        400,
                        format!("Could not find operation {op} for version {VERSION}."),
                    ))
                }
            };
            Ok(x.into_bytes())
        })
    }
}

/// GetCallerIdentity needs no permission: AWS answers it even under an explicit deny.
fn caller_identity(gate: &Gate<'_>) -> Xml {
    let p = gate.authenticated_only().principal();
    let mut x = Xml::new();
    x.leaf("Arn", &p.arn)
        .leaf("UserId", &p.user_id)
        .leaf("Account", &p.account);
    x
}

fn duration(p: &Params<'_>, default: i64, min: i64, max: i64) -> Result<i64, ServiceError> {
    let d = p.int("DurationSeconds")?.unwrap_or(default);
    if d < min || d > max {
        return Err(validation(format!(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role, or is below {min}: {d} is not between {min} and {max}."
        )));
    }
    Ok(d)
}

fn credentials_xml(x: &mut Xml, s: &Session) {
    x.node("Credentials", |x| {
        x.leaf("AccessKeyId", &s.access_key_id)
            .leaf("SecretAccessKey", &s.secret)
            .leaf("SessionToken", &s.token)
            .leaf("Expiration", &iso8601(s.expires_at));
    });
}

/// Writes a new session, dropping sessions that expired longer ago than the retention.
pub(crate) async fn start_session(
    iam: &Iam,
    mut s: Session,
    secs: i64,
) -> Result<Session, ServiceError> {
    let keep = iam.settings().expired_session_retention_secs;
    iam.write(|d| {
        s.expires_at = d.now + secs;
        let stale: Vec<String> = d
            .dir
            .sessions
            .values()
            .filter(|x| x.expires_at + keep < d.now)
            .map(|x| x.access_key_id.clone())
            .collect();
        for id in stale {
            d.delete_session(&id);
        }
        d.put_session(&s.access_key_id.clone(), s.clone());
        Ok(s)
    })
    .await
}

pub(crate) fn new_session(owner: String, user_id: String) -> Session {
    Session {
        access_key_id: new_key_id("ASIA"),
        secret: new_secret(40),
        token: format!("IQoJgantry{}", new_secret(180).replace(['+', '/'], "A")),
        expires_at: 0,
        owner,
        user_id,
        task: None,
    }
}

async fn assume_role(iam: &Iam, p: &Params<'_>, gate: &Gate<'_>) -> Result<Xml, ServiceError> {
    let role_arn = p.required("RoleArn")?;
    let session_name = p.required("RoleSessionName")?;
    let name_ok = (2..=64).contains(&session_name.len())
        && session_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !name_ok {
        return Err(validation(format!(
            "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )));
    }
    for unsupported in [
        "Policy",
        "PolicyArns.member.1.arn",
        "Tags.member.1.Key",
        "SerialNumber",
    ] {
        if p.get(unsupported).is_some() {
            let what = unsupported.split('.').next().unwrap_or(unsupported);
            return Err(validation(format!(
                "gantry's AssumeRole does not take {what} (session policies, session tags and MFA are not served); leave it out."
            )));
        }
    }
    let principal = gate.principal();
    let denied = || {
        access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            principal.arn
        ))
    };
    let view = iam.view();
    let role = role_by_arn(&view, role_arn).ok_or_else(denied)?;
    let chained = principal.arn.contains(":assumed-role/");
    let mut names = vec![principal.arn.clone()];
    if chained {
        // A role session is also named by its role's ARN.
        if let Some(r) = principal
            .arn
            .split(":assumed-role/")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .and_then(|r| view.roles.get(&id_of(r)))
        {
            names.push(r.arn.clone());
        }
    }
    let facts = ExternalId(p.get("ExternalId").map(|e| vec![e.to_string()]));
    let trust = |account: &str| {
        let who = Who {
            account,
            aws: &names,
            service: None,
        };
        evaluate(
            std::slice::from_ref(&role.trust),
            &Query {
                action: "sts:AssumeRole",
                resource: role_arn,
                facts: &facts,
                principal: Some(&who),
            },
        )
        .decision
    };
    if trust(&principal.account) != Decision::Allowed {
        return Err(denied());
    }
    // A trust policy that names the caller itself grants on its own; one that names only the
    // account leaves it to the caller's identity-based policies.
    if trust("") != Decision::Allowed {
        gate.authorize("sts:AssumeRole", &[role_arn.to_string()])?;
    }
    let max = if chained {
        CHAINED_MAX_SECS
    } else {
        role.max_session
    };
    let secs = duration(p, 3600, iam.settings().min_session_secs, max)?;
    let session = new_session(
        format!("assumed-role/{}/{session_name}", role.name),
        format!("{}:{session_name}", role.id),
    );
    let (role_id, role_name) = (role.id.clone(), role.name.clone());
    drop(view);
    let s = start_session(iam, session, secs).await?;
    let mut x = Xml::new();
    credentials_xml(&mut x, &s);
    x.node("AssumedRoleUser", |x| {
        x.leaf("AssumedRoleId", &format!("{role_id}:{session_name}"))
            .leaf(
                "Arn",
                &format!(
                    "arn:aws:sts::{}:assumed-role/{role_name}/{session_name}",
                    iam.account()
                ),
            );
    });
    x.leaf("PackedPolicySize", "0");
    Ok(x)
}

/// `sts:ExternalId`, the only key AssumeRole's trust conditions get from the request.
struct ExternalId(Option<Vec<String>>);

impl gantry_policy::Facts for ExternalId {
    fn get(&self, key: &str) -> Option<&[String]> {
        match key {
            "sts:externalid" => self.0.as_deref(),
            _ => None,
        }
    }
}

async fn session_token(iam: &Iam, p: &Params<'_>, gate: &Gate<'_>) -> Result<Xml, ServiceError> {
    let principal = gate.authenticated_only().principal();
    if iam
        .view()
        .dir
        .sessions
        .contains_key(&principal.access_key_id)
    {
        return Err(access_denied(
            "Cannot call GetSessionToken with session credentials".into(),
        ));
    }
    let max = if principal.admin { 3600 } else { 129_600 };
    let default = if principal.admin { 3600 } else { 43_200 };
    let secs = duration(p, default, iam.settings().min_session_secs, max)?;
    let owner = if principal.admin {
        "root".to_string()
    } else {
        let tail = principal.arn.split(':').nth(5).unwrap_or_default();
        tail.to_string()
    };
    let s = start_session(iam, new_session(owner, principal.user_id.clone()), secs).await?;
    let mut x = Xml::new();
    credentials_xml(&mut x, &s);
    Ok(x)
}

/// STS's entry: Query, version 2011-06-15, signing name `sts`, global.
pub fn entry(iam: &Arc<Iam>) -> ServiceEntry {
    crate::query_entry("sts", VERSION, XML_NAMESPACE, Arc::new(Sts(iam.clone())))
}
