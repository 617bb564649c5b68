//! One module per resource. Each operation decodes its input shape, runs against the state and
//! encodes its output shape.

mod account_settings;
mod authz;
pub(crate) mod capacity_providers;
mod clusters;
pub(crate) use clusters::create as create_cluster;
pub(crate) mod instances;
pub(crate) mod network;
pub(crate) mod placement;
pub(crate) mod reports;
pub(crate) mod security_groups;
mod service_links;
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
use authz::{Names, Resources};
use gantry_api::model::Operation;
use gantry_api::{decode, ApiError, ErrorCode};
use gantry_core::{Gate, ServiceError};
use serde::Serialize;

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::server(format!("encoding the response: {e}")))
}

/// Decodes the body as the input shape of `$f`, asks the authorization hook for the
/// operation's action on the ARNs the input names (with its condition keys and the resources'
/// tags) and for `iam:PassRole` on each role it hands to tasks, then runs `$f` and encodes its
/// result.
macro_rules! call {
    ($server:expr, $body:expr, $gate:expr, $op:expr, $f:path) => {{
        let input = decode($body)?;
        let names = Names::new($server);
        let ask = Resources::ask(&input, &names);
        let caller =
            $gate.authorize_ask(&format!("ecs:{}", $op.name()), &ask, &tags::Tagged($server))?;
        for role in Resources::passed_roles(&input, &names) {
            authz::pass_role($gate, &role)?;
        }
        encode(&$f($server, input, &caller).await?)?
    }};
}

/// Runs one ECS operation: decode, authorize, handle, encode.
pub async fn dispatch(
    server: &Server,
    op: Operation,
    body: &[u8],
    gate: &Gate<'_>,
) -> Result<Vec<u8>, ServiceError> {
    use Operation as O;
    let s = server;
    Ok(match op {
        O::CreateCluster => call!(s, body, gate, op, clusters::create),
        O::DescribeClusters => call!(s, body, gate, op, clusters::describe),
        O::ListClusters => call!(s, body, gate, op, clusters::list),
        O::UpdateCluster => call!(s, body, gate, op, clusters::update),
        O::UpdateClusterSettings => call!(s, body, gate, op, clusters::update_settings),
        O::DeleteCluster => call!(s, body, gate, op, clusters::delete),
        O::RegisterTaskDefinition => call!(s, body, gate, op, task_definitions::register),
        O::DescribeTaskDefinition => call!(s, body, gate, op, task_definitions::describe),
        O::ListTaskDefinitions => call!(s, body, gate, op, task_definitions::list),
        O::ListTaskDefinitionFamilies => call!(s, body, gate, op, task_definitions::list_families),
        O::DeregisterTaskDefinition => call!(s, body, gate, op, task_definitions::deregister),
        O::DeleteTaskDefinitions => call!(s, body, gate, op, task_definitions::delete),
        O::TagResource => call!(s, body, gate, op, tags::tag),
        O::UntagResource => call!(s, body, gate, op, tags::untag),
        O::ListTagsForResource => call!(s, body, gate, op, tags::list),
        O::PutAccountSetting => call!(s, body, gate, op, account_settings::put_setting),
        O::PutAccountSettingDefault => call!(s, body, gate, op, account_settings::put_default),
        O::DeleteAccountSetting => call!(s, body, gate, op, account_settings::delete),
        O::ListAccountSettings => call!(s, body, gate, op, account_settings::list),
        O::RegisterContainerInstance => call!(s, body, gate, op, instances::register),
        O::DeregisterContainerInstance => call!(s, body, gate, op, instances::deregister),
        O::DescribeContainerInstances => call!(s, body, gate, op, instances::describe),
        O::ListContainerInstances => call!(s, body, gate, op, instances::list),
        O::UpdateContainerInstancesState => call!(s, body, gate, op, instances::update_state),
        O::PutAttributes => call!(s, body, gate, op, instances::put_attributes),
        O::DeleteAttributes => call!(s, body, gate, op, instances::delete_attributes),
        O::ListAttributes => call!(s, body, gate, op, instances::list_attributes),
        O::CreateCapacityProvider => call!(s, body, gate, op, capacity_providers::create),
        O::DescribeCapacityProviders => call!(s, body, gate, op, capacity_providers::describe),
        O::UpdateCapacityProvider => call!(s, body, gate, op, capacity_providers::update),
        O::DeleteCapacityProvider => call!(s, body, gate, op, capacity_providers::delete),
        O::PutClusterCapacityProviders => {
            call!(s, body, gate, op, capacity_providers::put_cluster)
        }
        O::RunTask => call!(s, body, gate, op, tasks::run),
        O::StartTask => call!(s, body, gate, op, tasks::start),
        O::StopTask => call!(s, body, gate, op, tasks::stop),
        O::DescribeTasks => call!(s, body, gate, op, tasks::describe),
        O::ListTasks => call!(s, body, gate, op, tasks::list),
        O::CreateService => call!(s, body, gate, op, services::create),
        O::UpdateService => call!(s, body, gate, op, services::update),
        O::DeleteService => call!(s, body, gate, op, services::delete),
        O::DescribeServices => call!(s, body, gate, op, services::describe),
        O::ListServices => call!(s, body, gate, op, services::list),
        O::SubmitTaskStateChange => call!(s, body, gate, op, reports::submit_task_state_change),
        O::SubmitContainerStateChange => {
            call!(s, body, gate, op, reports::submit_container_state_change)
        }
        other => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedFeatureException,
                format!("gantry does not implement {} yet.", other.name()),
            )
            .into())
        }
    })
}
