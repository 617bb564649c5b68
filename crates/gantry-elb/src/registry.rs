//! gantry-core's [`TargetRegistry`]: ECS services register their tasks' addresses in target
//! groups, read their health, and deregister them before they stop.

use crate::health::State;
use crate::model::{balancers_of, Resource, Target};
use crate::Elb;
use gantry_core::table::BoxFuture;
use gantry_core::{ServiceError, TargetRegistry, TargetState};

impl TargetRegistry for Elb {
    fn refuse(&self, group_arn: &str) -> Option<String> {
        let all = self.snapshot();
        match all.get(group_arn) {
            Some(Resource::Group(_)) if balancers_of(&all, group_arn).is_empty() => Some(format!(
                "The target group with targetGroupArn {group_arn} does not have an associated load balancer."
            )),
            Some(Resource::Group(_)) => None,
            _ => Some(format!("The target group {group_arn} does not exist.")),
        }
    }

    fn state(&self, group_arn: &str, ip: &str, port: u16) -> Option<TargetState> {
        let all = self.snapshot();
        let Some(Resource::Group(g)) = all.get(group_arn) else {
            return None;
        };
        let t = Target {
            id: ip.to_string(),
            port,
        };
        let known = self
            .health
            .of(group_arn)
            .into_iter()
            .find(|(k, _)| *k == t)
            .map(|(_, h)| h.state);
        if g.targets.contains(&t) {
            return Some(match known {
                Some(State::Healthy) => TargetState::Healthy,
                Some(State::Unhealthy) => TargetState::Unhealthy,
                _ => TargetState::Initial,
            });
        }
        (known == Some(State::Draining)).then_some(TargetState::Draining)
    }

    fn deregistration_delay(&self, group_arn: &str) -> f64 {
        match self.snapshot().get(group_arn) {
            Some(Resource::Group(g)) => {
                f64::from(g.deregistration_delay()) * self.settings.second.as_secs_f64()
            }
            _ => 0.0,
        }
    }

    fn register<'a>(
        &'a self,
        group_arn: &'a str,
        ip: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        self.change_one(group_arn, ip, port, true)
    }

    fn deregister<'a>(
        &'a self,
        group_arn: &'a str,
        ip: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        self.change_one(group_arn, ip, port, false)
    }
}

impl Elb {
    /// Adds or removes one target, quietly when it is already so.
    fn change_one<'a>(
        &'a self,
        group_arn: &'a str,
        ip: &'a str,
        port: u16,
        add: bool,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let t = Target {
                id: ip.to_string(),
                port,
            };
            self.change_targets(group_arn, &[t], add, false).await
        })
    }
}

impl std::fmt::Debug for Elb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Elb({})", self.region)
    }
}
