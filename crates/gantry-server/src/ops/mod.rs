//! One module per resource. Each operation decodes its input shape, runs against the state and
//! encodes its output shape.

mod account_settings;
pub(crate) mod capacity_providers;
mod clusters;
pub(crate) use clusters::create as create_cluster;
pub(crate) mod instances;
pub(crate) mod network;
pub(crate) mod placement;
pub(crate) mod security_groups;
pub(crate) mod services;
mod tags;
mod task_definitions;
pub(crate) mod tasks;

/// The task definition a reference names (see [`task_definitions::resolve`]).
pub(crate) fn resolve_task_definition(
    st: &crate::state::State,
    r: &gantry_api::TaskDefRef,
) -> Option<gantry_api::model::TaskDefinition> {
    task_definitions::resolve(st, r).map(|rec| rec.task_definition.clone())
}

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
        O::RegisterContainerInstance => call!(server, body, who, instances::register),
        O::DeregisterContainerInstance => call!(server, body, who, instances::deregister),
        O::DescribeContainerInstances => call!(server, body, who, instances::describe),
        O::ListContainerInstances => call!(server, body, who, instances::list),
        O::UpdateContainerInstancesState => call!(server, body, who, instances::update_state),
        O::PutAttributes => call!(server, body, who, instances::put_attributes),
        O::CreateCapacityProvider => call!(server, body, who, capacity_providers::create),
        O::DescribeCapacityProviders => call!(server, body, who, capacity_providers::describe),
        O::UpdateCapacityProvider => call!(server, body, who, capacity_providers::update),
        O::DeleteCapacityProvider => call!(server, body, who, capacity_providers::delete),
        O::PutClusterCapacityProviders => call!(server, body, who, capacity_providers::put_cluster),
        O::DeleteAttributes => call!(server, body, who, instances::delete_attributes),
        O::ListAttributes => call!(server, body, who, instances::list_attributes),
        O::RunTask => call!(server, body, who, tasks::run),
        O::StartTask => call!(server, body, who, tasks::start),
        O::StopTask => call!(server, body, who, tasks::stop),
        O::DescribeTasks => call!(server, body, who, tasks::describe),
        O::ListTasks => call!(server, body, who, tasks::list),
        O::CreateService => call!(server, body, who, services::create),
        O::UpdateService => call!(server, body, who, services::update),
        O::DeleteService => call!(server, body, who, services::delete),
        O::DescribeServices => call!(server, body, who, services::describe),
        O::ListServices => call!(server, body, who, services::list),
        O::SubmitTaskStateChange => call!(server, body, who, tasks::submit_task_state_change),
        O::SubmitContainerStateChange => {
            call!(server, body, who, tasks::submit_container_state_change)
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedFeatureException,
            format!("gantry does not implement {} yet.", other.name()),
        )),
    }
}
