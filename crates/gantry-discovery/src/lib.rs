//! gantry-discovery: AWS Cloud Map (`Route53AutoNaming_v20170314.<Op>`, AWS JSON 1.1, signed
//! for `servicediscovery`), so `aws servicediscovery` and boto3 work, and the DNS server that
//! answers for its private DNS namespaces.
//!
//! - [`model`]: namespaces, services, instances and operations, one record kind.
//! - [`api`]: the operations, each authorized as `servicediscovery:<Operation>`.
//! - [`dns`]: answers to DNS questions from a snapshot of the records (pure).
//! - [`server`]: the DNS server's sockets (UDP and TCP) and forwarding.
//! - `registry`: gantry-core's [`gantry_core::ServiceRegistry`], through which ECS services
//!   register their tasks.

pub mod api;
pub mod dns;
pub mod model;
mod registry;
pub mod server;

use gantry_core::{Records, Scoped, ServiceError};
use gantry_store::Store;
use model::{Resource, RESOURCES};
use std::sync::Arc;

/// The service: its records, region and account.
pub struct Discovery {
    region: String,
    account: String,
    resources: Records<Resource>,
}

/// A store failure, as Cloud Map reports a fault of its own.
pub(crate) fn internal(e: String) -> ServiceError {
    tracing::error!(error = %e, "the service discovery store failed");
    ServiceError::new("InternalFailure", 500, "An internal error occurred.")
}

impl Discovery {
    /// Loads the region's namespaces (store namespace `servicediscovery/<region>/`).
    pub async fn open(
        store: Arc<dyn Store>,
        region: impl Into<String>,
        account: impl Into<String>,
    ) -> Result<Arc<Discovery>, gantry_core::RecordError> {
        let region = region.into();
        let scoped: Arc<dyn Store> = Arc::new(Scoped::regional(store, "servicediscovery", &region));
        Ok(Arc::new(Discovery {
            resources: Records::load(RESOURCES, scoped, internal).await?,
            region,
            account: account.into(),
        }))
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Every record now.
    pub fn snapshot(&self) -> Arc<std::collections::BTreeMap<String, Resource>> {
        self.resources.snapshot()
    }

    pub(crate) async fn update<T>(
        &self,
        f: impl FnOnce(&mut gantry_core::records::Rows<'_, Resource>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        self.resources.update(f).await
    }

    /// `arn:aws:servicediscovery:<region>:<account>:<rest>`.
    pub(crate) fn arn(&self, rest: &str) -> String {
        format!(
            "arn:aws:servicediscovery:{}:{}:{rest}",
            self.region, self.account
        )
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Discovery({})", self.region)
    }
}

/// `len` random lowercase letters and digits, as Cloud Map's ids end.
pub(crate) fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Seconds since the epoch, as AWS JSON writes timestamps.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or_default()
}
