//! Where ECS services register their tasks: the load balancers' target groups, which the
//! service scheduler sees only through [`TargetRegistry`], so that ECS does not depend on the
//! load-balancing crate.

use crate::error::ServiceError;
use gantry_store::BoxFuture;

/// A registered target's health, as the service scheduler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Registered, not yet through its first checks.
    Initial,
    Healthy,
    Unhealthy,
    /// Deregistered, finishing its requests for the deregistration delay.
    Draining,
}

/// The target groups of the region's load balancers.
pub trait TargetRegistry: Send + Sync + std::fmt::Debug + 'static {
    /// Why a service cannot use the group (it does not exist, or no load balancer forwards
    /// to it), as ECS says it; `None` when it can.
    fn refuse(&self, group_arn: &str) -> Option<String>;
    /// The target's health in the group; `None` when it is neither registered nor draining.
    fn state(&self, group_arn: &str, ip: &str, port: u16) -> Option<TargetState>;
    /// How long the group's targets drain after deregistration, in seconds.
    fn deregistration_delay(&self, group_arn: &str) -> f64;
    fn register<'a>(
        &'a self,
        group_arn: &'a str,
        ip: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<(), ServiceError>>;
    fn deregister<'a>(
        &'a self,
        group_arn: &'a str,
        ip: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<(), ServiceError>>;
}
