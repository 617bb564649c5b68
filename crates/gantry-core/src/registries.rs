//! Where ECS services register their tasks for discovery by name: Cloud Map's services, which
//! the service scheduler sees only through [`ServiceRegistry`], so that ECS does not depend on
//! the discovery crate.

use crate::error::ServiceError;
use gantry_store::BoxFuture;
use std::collections::BTreeMap;

/// What a registry's service needs of a task's registration, as ECS reads it from the
/// registry's DNS records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryNeeds {
    /// The service has an SRV record: the registration needs a port.
    pub port: bool,
}

/// The services of the region's Cloud Map namespaces.
pub trait ServiceRegistry: Send + Sync + std::fmt::Debug + 'static {
    /// What registering in `registry_arn` needs, or why a service cannot use it (it does not
    /// exist), as ECS says it.
    fn needs(&self, registry_arn: &str) -> Result<RegistryNeeds, String>;
    /// The instances registered in the registry now: ids and attributes.
    fn instances(&self, registry_arn: &str) -> Vec<(String, BTreeMap<String, String>)>;
    /// Registers (or replaces) one instance with its attributes (`AWS_INSTANCE_IPV4`, ...).
    fn register<'a>(
        &'a self,
        registry_arn: &'a str,
        instance_id: &'a str,
        attributes: BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), ServiceError>>;
    /// Removes one instance; quietly when it is not there.
    fn deregister<'a>(
        &'a self,
        registry_arn: &'a str,
        instance_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ServiceError>>;
}
