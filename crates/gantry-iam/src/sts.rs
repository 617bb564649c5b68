//! STS (`sts`, API version 2011-06-15, awsQuery): who is calling.

use gantry_core::authz::DenialShape;
use gantry_core::protocol::escape;
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, Recognise, Regions, ServiceEntry, ServiceError};
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

struct Sts;

impl Dispatch for Sts {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let action = format!("sts:{}", call.operation);
            match call.operation {
                "GetCallerIdentity" => {
                    let caller = call.gate.authorize(&action, &["*".to_string()])?;
                    let p = caller.principal();
                    Ok(format!(
                        "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
                        escape(&p.arn),
                        escape(&p.user_id),
                        escape(&p.account)
                    )
                    .into_bytes())
                }
                op if OPERATIONS.contains(&op) => Err(ServiceError::new(
                    "InvalidAction",
                    400,
                    format!("gantry does not implement the STS action {op} yet."),
                )),
                op => Err(ServiceError::new(
                    "InvalidAction",
                    400,
                    format!("Could not find operation {op} for version {VERSION}."),
                )),
            }
        })
    }
}

/// STS's entry: Query, version 2011-06-15, signing name `sts`, global.
pub fn entry() -> ServiceEntry {
    ServiceEntry {
        name: "sts",
        signing_name: "sts",
        recognise: vec![Recognise::Query { version: VERSION }],
        xml_namespace: XML_NAMESPACE,
        denial: DenialShape {
            code: "AccessDenied",
            status: 403,
        },
        regions: Regions::Global,
        dispatcher: Arc::new(Sts),
    }
}
