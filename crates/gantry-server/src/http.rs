//! The HTTP face of the control plane: the front door (every AWS service in the table) on
//! `POST /`, the agent endpoint, `/metrics` and `/healthz`.
//!
//! This crate brings two entries of the table: ECS itself ([`ecs_entry`], AWS JSON 1.1) and
//! gantry's own operations ([`gantry_entry`], `GantryV1`, AWS JSON 1.0). Other services (STS,
//! and those to come) are entries from their own crates, added by whoever assembles the
//! server ([`front_door`]).

use crate::Server;
use axum::extract::State;
use axum::http::{header, HeaderMap, Uri};
use axum::routing::get;
use axum::Router;
use gantry_api::model::{Operation, TARGET_PREFIX};
use gantry_api::{ApiError, ErrorCode};
use gantry_core::authz::DenialShape;
use gantry_core::table::{BoxFuture, TableError};
use gantry_core::{
    AdminOnly, Authorizer, Call, Dispatch, FrontDoor, Input, Protocol, Recognise, Regions,
    ServiceEntry, ServiceError, ServiceTable,
};
use std::sync::Arc;

/// ECS's content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// How ECS refuses an authorization (the model's AccessDeniedException, HTTP 400).
const ECS_DENIAL: DenialShape = DenialShape {
    code: "AccessDeniedException",
    status: 400,
};

/// The JSON body of a call (the only input the entries of this crate are recognised with).
fn json_body<'a>(call: &Call<'a>) -> Result<&'a [u8], ServiceError> {
    match call.input {
        Input::Json(body) => Ok(body),
        _ => Err(ApiError::new(
            ErrorCode::SerializationException,
            "This service takes AWS JSON bodies.",
        )
        .into()),
    }
}

struct Ecs(Arc<Server>);

impl Dispatch for Ecs {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let body = json_body(&call)?;
            let op = Operation::from_name(call.operation).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::UnknownOperationException,
                    format!("Unknown operation {TARGET_PREFIX}.{}", call.operation),
                )
            })?;
            crate::ops::dispatch(&self.0, op, body, &call.gate).await
        })
    }
}

struct GantryV1(Arc<Server>);

impl Dispatch for GantryV1 {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let body = json_body(&call)?;
            crate::ops::security_groups::dispatch(&self.0, call.operation, body, &call.gate).await
        })
    }
}

/// ECS: `AmazonEC2ContainerServiceV20141113`, AWS JSON 1.1, signed for `ecs`, in the server's
/// region.
pub fn ecs_entry(server: &Arc<Server>) -> ServiceEntry {
    ServiceEntry {
        name: "ecs",
        signing_name: "ecs",
        recognise: vec![Recognise::Json {
            protocol: Protocol::AwsJson1_1,
            target_prefix: TARGET_PREFIX,
        }],
        xml_namespace: "",
        denial: ECS_DENIAL,
        regions: Regions::Served(vec![server.config.region.clone()]),
        dispatcher: Arc::new(Ecs(server.clone())),
    }
}

/// gantry's own operations (security groups): `GantryV1`, AWS JSON 1.0, signed for `gantry`.
pub fn gantry_entry(server: &Arc<Server>) -> ServiceEntry {
    ServiceEntry {
        name: "gantry",
        signing_name: "gantry",
        recognise: vec![Recognise::Json {
            protocol: Protocol::AwsJson1_0,
            target_prefix: crate::ops::security_groups::PREFIX,
        }],
        xml_namespace: "",
        denial: ECS_DENIAL,
        regions: Regions::Served(vec![server.config.region.clone()]),
        dispatcher: Arc::new(GantryV1(server.clone())),
    }
}

/// Who may sign and what they may do: the front door's keys and authorizer.
pub struct Access {
    pub keys: Arc<dyn gantry_auth::Keys>,
    pub authorizer: Arc<dyn Authorizer>,
}

impl Access {
    /// The server's configured keys, each allowed what its owner is: the root everything,
    /// anyone else nothing ([`AdminOnly`]): a server assembled without IAM.
    pub fn admin_only(server: &Server) -> Access {
        Access {
            keys: Arc::new(server.config.keys.clone()),
            authorizer: Arc::new(AdminOnly),
        }
    }
}

/// The front door with ECS, GantryV1 and `extra` entries, authenticating and authorizing with
/// `access`.
pub fn front_door(
    server: &Arc<Server>,
    access: Access,
    extra: Vec<ServiceEntry>,
) -> Result<Arc<FrontDoor>, TableError> {
    let mut table = ServiceTable::new();
    table.add(ecs_entry(server))?;
    table.add(gantry_entry(server))?;
    for e in extra {
        table.add(e)?;
    }
    Ok(Arc::new(FrontDoor {
        table,
        keys: access.keys,
        account_id: server.config.account_id.clone(),
        authorizer: access.authorizer,
        max_body_bytes: server.config.max_body_bytes,
        metrics: Default::default(),
    }))
}

/// The router with ECS and GantryV1 only, without IAM ([`Access::admin_only`]).
pub fn router(server: Arc<Server>) -> Router {
    match front_door(&server, Access::admin_only(&server), Vec::new()) {
        Ok(door) => router_with(server, door),
        Err(e) => {
            // ECS and GantryV1 have distinct prefixes: not reached (every in-process test
            // goes through this router).
            tracing::error!(error = %e, "the service table refused ECS or GantryV1");
            Router::new()
        }
    }
}

/// The router: `/metrics`, `/healthz`, the agent endpoint, and the front door on every other
/// path and method (answering errors as AWS would).
pub fn router_with(server: Arc<Server>, door: Arc<FrontDoor>) -> Router {
    let metrics_door = door.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let door = metrics_door.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        door.metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(crate::events_api::EVENTS_PATH, {
            let door = door.clone();
            get(
                move |State(server): State<Arc<Server>>, headers: HeaderMap, uri: Uri| {
                    crate::events_api::stream(server, door.clone(), headers, uri)
                },
            )
        })
        .merge(crate::agent_api::routes())
        .fallback(gantry_core::frontdoor::fallback(door))
        .with_state(server)
}
