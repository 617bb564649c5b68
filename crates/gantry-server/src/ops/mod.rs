//! One module per resource. Each operation decodes its input shape, runs against the state and
//! encodes its output shape.

mod account_settings;
mod clusters;
mod tags;
mod task_definitions;

use crate::Server;
use gantry_api::model::Operation;
use gantry_api::{decode, ApiError, ErrorCode};
use gantry_auth::Identity;
use serde::Serialize;

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::server(format!("encoding the response: {e}")))
}

/// Decodes the body as `$input`, runs `$f` and encodes its result.
macro_rules! call {
    ($server:expr, $body:expr, $who:expr, $f:path) => {{
        let input = decode($body)?;
        encode(&$f($server, input, $who).await?)
    }};
}

pub async fn dispatch(
    server: &Server,
    op: Operation,
    body: &[u8],
    who: &Identity,
) -> Result<Vec<u8>, ApiError> {
    use Operation as O;
    match op {
        O::CreateCluster => call!(server, body, who, clusters::create),
        O::DescribeClusters => call!(server, body, who, clusters::describe),
        O::ListClusters => call!(server, body, who, clusters::list),
        O::UpdateCluster => call!(server, body, who, clusters::update),
        O::UpdateClusterSettings => call!(server, body, who, clusters::update_settings),
        O::DeleteCluster => call!(server, body, who, clusters::delete),
        O::RegisterTaskDefinition => call!(server, body, who, task_definitions::register),
        O::DescribeTaskDefinition => call!(server, body, who, task_definitions::describe),
        O::ListTaskDefinitions => call!(server, body, who, task_definitions::list),
        O::ListTaskDefinitionFamilies => call!(server, body, who, task_definitions::list_families),
        O::DeregisterTaskDefinition => call!(server, body, who, task_definitions::deregister),
        O::DeleteTaskDefinitions => call!(server, body, who, task_definitions::delete),
        O::TagResource => call!(server, body, who, tags::tag),
        O::UntagResource => call!(server, body, who, tags::untag),
        O::ListTagsForResource => call!(server, body, who, tags::list),
        O::PutAccountSetting => call!(server, body, who, account_settings::put_setting),
        O::PutAccountSettingDefault => call!(server, body, who, account_settings::put_default),
        O::DeleteAccountSetting => call!(server, body, who, account_settings::delete),
        O::ListAccountSettings => call!(server, body, who, account_settings::list),
        other => Err(ApiError::new(
            ErrorCode::UnsupportedFeatureException,
            format!("gantry does not implement {} yet.", other.name()),
        )),
    }
}
