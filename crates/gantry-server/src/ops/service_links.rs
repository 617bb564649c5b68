//! What a service is wired to: its load balancers' target groups and its Cloud Map
//! registries, checked as ECS checks them at CreateService and UpdateService, and replaced by
//! UpdateService (what it takes off is kept, so the older tasks leave it as they stop).

use crate::Server;
use gantry_api::model::*;
use gantry_api::{ApiError, ErrorCode};

/// A service's `loadBalancers`: target groups (classic load balancers are not served) that
/// a load balancer forwards to, each once per container and port.
pub(crate) fn check_load_balancers(server: &Server, lbs: &[LoadBalancer]) -> Result<(), ApiError> {
    if lbs.is_empty() {
        return Ok(());
    }
    let Some(targets) = &server.config.targets else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedFeatureException,
            "Load balancers are served by `gantry up` and `gantry server`; this server has none.",
        ));
    };
    for lb in lbs {
        if lb.load_balancer_name.is_some() {
            return Err(ApiError::invalid(
                "Classic Load Balancers are not served; name a targetGroupArn of an application or network load balancer.",
            ));
        }
        let Some(tg) = lb.target_group_arn.as_deref() else {
            return Err(ApiError::invalid(
                "loadBalancers: targetGroupArn is required.",
            ));
        };
        if let Some(why) = targets.refuse(tg) {
            return Err(ApiError::invalid(why));
        }
        if lb.container_name.is_none() || lb.container_port.is_none() {
            return Err(ApiError::invalid(
                "loadBalancers: containerName and containerPort are required.",
            ));
        }
    }
    Ok(())
}

/// A service's `serviceRegistries`: one Cloud Map service of the region, with the port its
/// SRV record needs (`port`, or `containerName` and `containerPort`), as ECS checks them.
pub(crate) fn check_service_registries(
    server: &Server,
    regs: &[ServiceRegistry],
    td: &TaskDefinition,
) -> Result<(), ApiError> {
    let Some(first) = regs.first() else {
        return Ok(());
    };
    let Some(registries) = &server.config.registries else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedFeatureException,
            "Service discovery is served by `gantry up` and `gantry server`; this server has none.",
        ));
    };
    if regs.len() > 1 {
        return Err(ApiError::invalid(
            "serviceRegistries: a service can have only one service registry.",
        ));
    }
    let Some(arn) = first.registry_arn.as_deref() else {
        return Err(ApiError::invalid(
            "serviceRegistries: registryArn is required.",
        ));
    };
    let needs = registries.needs(arn).map_err(ApiError::invalid)?;
    let awsvpc = td.network_mode == Some(NetworkMode::Awsvpc);
    let named = first.container_name.is_some() || first.container_port.is_some();
    if named && (first.container_name.is_none() || first.container_port.is_none()) {
        return Err(ApiError::invalid(
            "serviceRegistries: containerName and containerPort go together.",
        ));
    }
    if named && first.port.is_some() {
        return Err(ApiError::invalid(
            "serviceRegistries: give either port or containerName and containerPort, not both.",
        ));
    }
    if needs.port && !named && !(awsvpc && first.port.is_some()) {
        return Err(ApiError::invalid(format!(
            "The service registry {arn} has an SRV record: serviceRegistries needs containerName and containerPort{}.",
            if awsvpc { " (or port)" } else { "" }
        )));
    }
    if !awsvpc && !needs.port {
        return Err(ApiError::invalid(format!(
            "The task definition's network mode is {}: its tasks have no address of their own, so the service registry {arn} needs an SRV record (A records need awsvpc).",
            td.network_mode.map_or("bridge", |m| m.as_str())
        )));
    }
    if let (Some(name), Some(port)) = (&first.container_name, first.container_port) {
        check_load_balancer_containers(
            &[LoadBalancer {
                container_name: Some(name.clone()),
                container_port: Some(port),
                ..Default::default()
            }],
            td,
        )?;
    }
    Ok(())
}

/// The task definition an ARN names (empty when it is gone).
pub(crate) fn task_definition(st: &crate::state::State, arn: &str) -> TaskDefinition {
    st.families
        .values()
        .flat_map(|f| f.revisions.values())
        .find(|r| r.task_definition.task_definition_arn.as_deref() == Some(arn))
        .map(|r| r.task_definition.clone())
        .unwrap_or_default()
}

/// Replaces `current` with `new` when they differ, keeping what goes in `former` (once);
/// whether anything changed.
pub(crate) fn replace_with_former<T: PartialEq + Clone>(
    current: &mut Option<Vec<T>>,
    former: &mut Vec<T>,
    new: &[T],
) -> bool {
    let old = current.clone().unwrap_or_default();
    if old == new {
        return false;
    }
    for o in old {
        if !new.contains(&o) && !former.contains(&o) {
            former.push(o);
        }
    }
    former.retain(|f| !new.contains(f));
    *current = Some(new.to_vec());
    true
}

/// Each load balancer's container is in the task definition, with a mapping of its port.
pub(crate) fn check_load_balancer_containers(
    lbs: &[LoadBalancer],
    td: &TaskDefinition,
) -> Result<(), ApiError> {
    for lb in lbs {
        let name = lb.container_name.as_deref().unwrap_or_default();
        let port = lb.container_port.unwrap_or_default();
        let Some(c) = td
            .container_definitions
            .iter()
            .flatten()
            .find(|c| c.name.as_deref() == Some(name))
        else {
            return Err(ApiError::invalid(format!(
                "The container {name} does not exist in the task definition."
            )));
        };
        let mapped = c
            .port_mappings
            .iter()
            .flatten()
            .any(|m| m.container_port == Some(port));
        if !mapped {
            return Err(ApiError::invalid(format!(
                "The container {name} did not have a container port {port} defined."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::replace_with_former;

    #[test]
    fn replacing_keeps_what_goes_once_and_forgets_what_comes_back() {
        let mut current = Some(vec!["a", "b"]);
        let mut former = Vec::new();
        assert!(!replace_with_former(&mut current, &mut former, &["a", "b"]));
        assert!(replace_with_former(&mut current, &mut former, &["b", "c"]));
        assert_eq!(
            (current.as_deref(), former.as_slice()),
            (Some(&["b", "c"][..]), &["a"][..])
        );
        assert!(replace_with_former(&mut current, &mut former, &["a"]));
        assert_eq!(
            (current.as_deref(), former.as_slice()),
            (Some(&["a"][..]), &["b", "c"][..])
        );
    }
}
