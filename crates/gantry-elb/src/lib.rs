//! gantry-elb: Elastic Load Balancing (v2) over its own protocol (Query, version 2015-12-01,
//! XML answers), so `aws elbv2` and boto3 work, and the data plane that serves it.
//!
//! - [`model`]: load balancers, target groups and listeners, one record kind keyed by ARN.
//! - [`api`]: the operations, each authorized as `elasticloadbalancing:<Operation>`.
//! - [`health`]: targets' health states and ELB's reasons (pure).
//! - [`plane`]: the listeners' sockets, the HTTP proxy and TCP forwarder, the health checker.
//! - `registry`: gantry-core's [`gantry_core::TargetRegistry`], through which ECS services
//!   register their tasks.

pub mod api;
pub mod health;
pub mod model;
pub mod plane;
mod registry;

use gantry_core::{Records, Scoped, ServiceError};
use gantry_store::Store;
use model::{Resource, RESOURCES};
use std::sync::Arc;
use std::time::Duration;

/// Where and how fast ELB runs.
#[derive(Debug, Clone)]
pub struct ElbSettings {
    /// The address load balancers' listeners listen on (and their DNSName).
    pub address: String,
    /// How long one second of a health check's interval and timeout, and of a deregistration
    /// delay, lasts (1 s; tests make it shorter).
    pub second: Duration,
    /// Where HTTPS listeners' certificates come from (ACM's); `None`: HTTPS is refused.
    pub certificates: Option<std::sync::Arc<dyn gantry_core::CertificateStore>>,
}

impl Default for ElbSettings {
    fn default() -> Self {
        ElbSettings {
            address: "127.0.0.1".into(),
            second: Duration::from_secs(1),
            certificates: None,
        }
    }
}

/// The service: its records, the targets' health, and where it is.
pub struct Elb {
    region: String,
    account: String,
    settings: ElbSettings,
    resources: Records<Resource>,
    health: health::HealthTable,
    /// Told after every change, so the data plane follows at once.
    changed: tokio::sync::watch::Sender<u64>,
}

/// A store failure, as ELB reports a fault of its own.
pub(crate) fn internal(e: String) -> ServiceError {
    tracing::error!(error = %e, "the load balancers' store failed");
    ServiceError::new(
        "InternalFailure",
        500,
        "The request processing has failed because of an unknown error, exception or failure.",
    )
}

impl Elb {
    /// Loads the region's load balancers (namespace `elasticloadbalancing/<region>/`).
    pub async fn open(
        store: Arc<dyn Store>,
        region: impl Into<String>,
        account: impl Into<String>,
        settings: ElbSettings,
    ) -> Result<Arc<Elb>, gantry_core::RecordError> {
        let region = region.into();
        let scoped: Arc<dyn Store> =
            Arc::new(Scoped::regional(store, "elasticloadbalancing", &region));
        Ok(Arc::new(Elb {
            resources: Records::load(RESOURCES, scoped, internal).await?,
            region,
            account: account.into(),
            settings,
            health: health::HealthTable::default(),
            changed: tokio::sync::watch::channel(0).0,
        }))
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn settings(&self) -> &ElbSettings {
        &self.settings
    }

    pub fn health(&self) -> &health::HealthTable {
        &self.health
    }

    /// Every resource now.
    pub fn snapshot(&self) -> Arc<std::collections::BTreeMap<String, Resource>> {
        self.resources.snapshot()
    }

    /// A receiver told of every change.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Makes a change (see [`Records::update`]) and tells the data plane.
    pub(crate) async fn update<T>(
        &self,
        f: impl FnOnce(&mut gantry_core::records::Rows<'_, Resource>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let out = self.resources.update(f).await?;
        self.changed.send_modify(|n| *n += 1);
        Ok(out)
    }

    /// Adds (`add`) or removes targets of a group in one change. `strict`: refuse to remove a
    /// target that is not registered, as DeregisterTargets does.
    pub(crate) async fn change_targets(
        &self,
        arn: &str,
        targets: &[model::Target],
        add: bool,
        strict: bool,
    ) -> Result<(), ServiceError> {
        let g = self.update(|rows| {
            let Some(Resource::Group(mut g)) = rows.get(arn).cloned() else {
                return Err(api::not_found(
                    "TargetGroupNotFound",
                    format!("Target group '{arn}' not found"),
                ));
            };
            if add {
                for t in targets {
                    if !g.targets.contains(t) {
                        g.targets.push(t.clone());
                    }
                }
                g.targets.sort();
            } else {
                if let Some(t) = targets.iter().find(|t| strict && !g.targets.contains(t)) {
                    return Err(ServiceError::new(
                        "InvalidTarget",
                        400,
                        format!(
                            "The following targets are not registered in target group '{arn}': '{}:{}'",
                            t.id, t.port
                        ),
                    ));
                }
                g.targets.retain(|t| !targets.contains(t));
            }
            rows.put(arn, Resource::Group(g.clone()));
            Ok(g)
        })
        .await?;
        // The health table follows at once: a removed target is draining from now on.
        self.health.sync(
            arn,
            &g.targets,
            self.settings.second * g.deregistration_delay(),
            std::time::Instant::now(),
        );
        Ok(())
    }

    /// `arn:aws:elasticloadbalancing:<region>:<account>:<rest>`.
    pub(crate) fn arn(&self, rest: &str) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:{rest}",
            self.region, self.account
        )
    }
}

/// 16 random hex digits, as ELB's ARNs end.
pub(crate) fn hex_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `2026-12-02T10:00:00.000Z`.
pub(crate) fn iso8601(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}
