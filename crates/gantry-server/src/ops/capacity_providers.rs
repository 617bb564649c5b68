//! CreateCapacityProvider, DescribeCapacityProviders, UpdateCapacityProvider,
//! DeleteCapacityProvider, PutClusterCapacityProviders; and how a capacityProviderStrategy
//! splits tasks (base first, then by weight).
//!
//! FARGATE and FARGATE_SPOT always exist and stand for the hosts that serve Fargate capacity. A
//! provider a user creates stands for the agents started with `--capacity-provider NAME`; its
//! autoScalingGroupProvider (managed scaling and so on) is stored but has no effect yet.

use super::clusters;
use crate::paginate::{max_results, page, Order};
use crate::state::records;
use crate::{now_secs, Server};
use gantry_api::model::*;
use gantry_api::taskdef::{valid_name, validate_tags};
use gantry_api::{ApiError, ErrorCode};
use gantry_core::Caller;
use gantry_store::Txn;

pub const FARGATE: &str = "FARGATE";
pub const FARGATE_SPOT: &str = "FARGATE_SPOT";

fn builtin(server: &Server, name: &str) -> CapacityProvider {
    CapacityProvider {
        capacity_provider_arn: Some(format!(
            "arn:aws:ecs:{}:{}:capacity-provider/{name}",
            server.config.region, server.config.account_id
        )),
        name: Some(name.into()),
        status: Some(CapacityProviderStatus::Active),
        r#type: Some(if name == FARGATE {
            CapacityProviderType::Fargate
        } else {
            CapacityProviderType::FargateSpot
        }),
        tags: Some(Vec::new()),
        ..CapacityProvider::default()
    }
}

/// Whether `name` is a provider tasks can be placed with (built in, or created and ACTIVE).
pub fn exists(st: &crate::state::State, name: &str) -> bool {
    name == FARGATE
        || name == FARGATE_SPOT
        || st
            .capacity_providers
            .get(name)
            .is_some_and(|p| p.status == Some(CapacityProviderStatus::Active))
}

/// Splits `count` tasks over a strategy: each provider's base first (in order), then the rest by
/// weight (largest remainders break ties). Returns (provider, tasks) for providers that get any.
pub fn split(strategy: &[CapacityProviderStrategyItem], count: usize) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = strategy
        .iter()
        .map(|i| (i.capacity_provider.clone(), 0))
        .collect();
    let mut left = count;
    for (ix, item) in strategy.iter().enumerate() {
        let b = (item.base.unwrap_or(0).max(0) as usize).min(left);
        out[ix].1 += b;
        left -= b;
    }
    let total: i64 = strategy
        .iter()
        .map(|i| i64::from(i.weight.unwrap_or(0).max(0)))
        .sum();
    if left > 0 && total > 0 {
        let mut given = 0;
        let mut rema: Vec<(i64, usize)> = Vec::new();
        for (ix, item) in strategy.iter().enumerate() {
            let w = i64::from(item.weight.unwrap_or(0).max(0));
            let share = left as i64 * w / total;
            out[ix].1 += share as usize;
            given += share as usize;
            rema.push((left as i64 * w % total, ix));
        }
        rema.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, ix) in rema.into_iter().take(left - given) {
            out[ix].1 += 1;
        }
    }
    out.into_iter().filter(|(_, n)| *n > 0).collect()
}

/// The strategy a RunTask or CreateService request runs with: its own (never together with a
/// launch type), or, with neither, the cluster's default strategy when it has one.
pub fn requested(
    server: &Server,
    cluster: Option<&str>,
    given: Option<&Vec<CapacityProviderStrategyItem>>,
    launch_type: Option<LaunchType>,
) -> Result<Option<Vec<CapacityProviderStrategyItem>>, ApiError> {
    match (given.filter(|s| !s.is_empty()), launch_type) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "Specify either a launchType or a capacityProviderStrategy, not both.",
        )),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(_)) => Ok(None),
        (None, None) => server.read(|st| {
            let name = server.arns.cluster_name(cluster).unwrap_or_default();
            st.clusters
                .get(&name)
                .and_then(|c| c.default_capacity_provider_strategy.clone())
                .filter(|s| !s.is_empty())
        }),
    }
}

/// The launch type tasks placed with `provider` run as.
pub fn launch_type_for(provider: &str) -> LaunchType {
    if provider == FARGATE || provider == FARGATE_SPOT {
        LaunchType::Fargate
    } else {
        LaunchType::Ec2
    }
}

/// Checks a strategy given to RunTask or a service in `cluster`: valid, and every provider
/// attached to the cluster (PutClusterCapacityProviders), as ECS requires.
pub fn check_strategy_in(
    st: &crate::state::State,
    cluster: &str,
    s: &[CapacityProviderStrategyItem],
) -> Result<(), ApiError> {
    check_strategy(st, s)?;
    let attached = st
        .clusters
        .get(cluster)
        .and_then(|c| c.capacity_providers.clone())
        .unwrap_or_default();
    match s.iter().find(|i| !attached.contains(&i.capacity_provider)) {
        Some(i) => Err(ApiError::invalid(format!(
            "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster: {} (see put-cluster-capacity-providers).",
            i.capacity_provider
        ))),
        None => Ok(()),
    }
}

/// Checks a strategy as ECS does.
pub fn check_strategy(
    st: &crate::state::State,
    s: &[CapacityProviderStrategyItem],
) -> Result<(), ApiError> {
    if s.is_empty() || s.len() > 20 {
        return Err(ApiError::invalid(
            "Invalid 'capacityProviderStrategy': give between 1 and 20 providers.",
        ));
    }
    if s.iter().filter(|i| i.base.unwrap_or(0) > 0).count() > 1 {
        return Err(ApiError::invalid(
            "Invalid 'capacityProviderStrategy': only one provider can have a base.",
        ));
    }
    for i in s {
        if !exists(st, &i.capacity_provider) {
            return Err(ApiError::invalid(format!(
                "The specified capacity provider {} does not exist.",
                i.capacity_provider
            )));
        }
        if !(0..=1000).contains(&i.weight.unwrap_or(0))
            || !(0..=100_000).contains(&i.base.unwrap_or(0))
        {
            return Err(ApiError::invalid(
                "Invalid 'capacityProviderStrategy': weight 0–1000, base 0–100000.",
            ));
        }
    }
    let fargate = s
        .iter()
        .any(|i| i.capacity_provider == FARGATE || i.capacity_provider == FARGATE_SPOT);
    let other = s
        .iter()
        .any(|i| i.capacity_provider != FARGATE && i.capacity_provider != FARGATE_SPOT);
    if fargate && other {
        return Err(ApiError::invalid(
            "A capacity provider strategy cannot mix Fargate and non-Fargate capacity providers.",
        ));
    }
    if s.iter().all(|i| i.weight.unwrap_or(0) == 0) && s.iter().all(|i| i.base.unwrap_or(0) == 0) {
        return Err(ApiError::invalid(
            "Invalid 'capacityProviderStrategy': at least one provider needs a weight.",
        ));
    }
    Ok(())
}

pub async fn create(
    server: &Server,
    req: CreateCapacityProviderRequest,
    _: &Caller<'_>,
) -> Result<CreateCapacityProviderResponse, ApiError> {
    if !valid_name(&req.name)
        || req.name.starts_with("aws")
        || req.name.starts_with("ecs")
        || req.name.starts_with("fargate")
        || req.name.starts_with("FARGATE")
    {
        return Err(ApiError::invalid(
            "Invalid 'name': up to 255 letters, numbers, underscores and hyphens, not starting with aws, ecs or fargate.",
        ));
    }
    validate_tags(req.tags.as_deref().unwrap_or_default())?;
    let p = server
        .write(move |st| {
            if st
                .capacity_providers
                .get(&req.name)
                .is_some_and(|p| p.status == Some(CapacityProviderStatus::Active))
            {
                return Err(ApiError::invalid(format!(
                    "The capacity provider {} already exists.",
                    req.name
                )));
            }
            let p = CapacityProvider {
                capacity_provider_arn: Some(format!(
                    "arn:aws:ecs:{}:{}:capacity-provider/{}",
                    server.config.region, server.config.account_id, req.name
                )),
                name: Some(req.name.clone()),
                status: Some(CapacityProviderStatus::Active),
                auto_scaling_group_provider: req.auto_scaling_group_provider.clone(),
                update_status: Some(CapacityProviderUpdateStatus::CreateComplete),
                tags: Some(req.tags.clone().unwrap_or_default()),
                r#type: Some(CapacityProviderType::Ec2Autoscaling),
                ..CapacityProvider::default()
            };
            st.capacity_providers.insert(req.name.clone(), p.clone());
            Ok((
                p.clone(),
                records::CAPACITY_PROVIDERS.put(Txn::new(), &req.name, &p),
            ))
        })
        .await?;
    Ok(CreateCapacityProviderResponse {
        capacity_provider: Some(p),
    })
}

pub async fn describe(
    server: &Server,
    req: DescribeCapacityProvidersRequest,
    _: &Caller<'_>,
) -> Result<DescribeCapacityProvidersResponse, ApiError> {
    let limit = max_results(req.max_results, 10, 10)?;
    let with_tags = req
        .include
        .unwrap_or_default()
        .contains(&CapacityProviderField::Tags);
    let (found, failures) = server.read(|st| {
        let mut all: Vec<CapacityProvider> =
            vec![builtin(server, FARGATE), builtin(server, FARGATE_SPOT)];
        all.extend(
            st.capacity_providers
                .values()
                .filter(|p| p.status == Some(CapacityProviderStatus::Active))
                .cloned(),
        );
        let mut failures = Vec::new();
        let picked: Vec<CapacityProvider> = match &req.capacity_providers {
            None => all,
            Some(names) => names
                .iter()
                .filter_map(|n| {
                    let short = n.rsplit('/').next().unwrap_or(n);
                    let p = all
                        .iter()
                        .find(|p| p.name.as_deref() == Some(short))
                        .cloned();
                    if p.is_none() {
                        failures.push(Failure {
                            arn: Some(n.clone()),
                            reason: Some("MISSING".into()),
                            detail: None,
                        });
                    }
                    p
                })
                .collect(),
        };
        (picked, failures)
    })?;
    let mut found = found;
    if !with_tags {
        for p in &mut found {
            p.tags = None;
        }
    }
    let p = page(
        found,
        |p| p.name.clone().unwrap_or_default(),
        Order::Asc,
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(DescribeCapacityProvidersResponse {
        capacity_providers: Some(p.items),
        failures: Some(failures),
        next_token: p.next_token,
    })
}

pub async fn update(
    server: &Server,
    req: UpdateCapacityProviderRequest,
    _: &Caller<'_>,
) -> Result<UpdateCapacityProviderResponse, ApiError> {
    let p = server
        .write(move |st| {
            let p = st
                .capacity_providers
                .get_mut(&req.name)
                .filter(|p| p.status == Some(CapacityProviderStatus::Active))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "The specified capacity provider {} does not exist.",
                        req.name
                    ))
                })?;
            if let (Some(new), Some(cur)) = (
                &req.auto_scaling_group_provider,
                p.auto_scaling_group_provider.as_mut(),
            ) {
                if new.managed_scaling.is_some() {
                    cur.managed_scaling = new.managed_scaling.clone();
                }
                if new.managed_termination_protection.is_some() {
                    cur.managed_termination_protection = new.managed_termination_protection;
                }
                if new.managed_draining.is_some() {
                    cur.managed_draining = new.managed_draining;
                }
            }
            p.update_status = Some(CapacityProviderUpdateStatus::UpdateComplete);
            let p = p.clone();
            Ok((
                p.clone(),
                records::CAPACITY_PROVIDERS.put(Txn::new(), &req.name, &p),
            ))
        })
        .await?;
    Ok(UpdateCapacityProviderResponse {
        capacity_provider: Some(p),
    })
}

pub async fn delete(
    server: &Server,
    req: DeleteCapacityProviderRequest,
    _: &Caller<'_>,
) -> Result<DeleteCapacityProviderResponse, ApiError> {
    let name = req
        .capacity_provider
        .rsplit('/')
        .next()
        .unwrap_or(&req.capacity_provider)
        .to_string();
    let p = server
        .write(move |st| {
            let in_use = st.clusters.values().any(|c| c.capacity_providers.iter().flatten().any(|p| *p == name));
            if in_use {
                return Err(ApiError::new(
                    ErrorCode::ResourceInUseException,
                    format!("The capacity provider {name} is associated with a cluster; remove it with PutClusterCapacityProviders first."),
                ));
            }
            let p = st
                .capacity_providers
                .get_mut(&name)
                .filter(|p| p.status == Some(CapacityProviderStatus::Active))
                .ok_or_else(|| ApiError::invalid(format!("The specified capacity provider {name} does not exist.")))?;
            p.status = Some(CapacityProviderStatus::Inactive);
            p.update_status = Some(CapacityProviderUpdateStatus::DeleteComplete);
            let p = p.clone();
            Ok((p.clone(), records::CAPACITY_PROVIDERS.put(Txn::new(), &name, &p)))
        })
        .await?;
    Ok(DeleteCapacityProviderResponse {
        capacity_provider: Some(p),
    })
}

pub async fn put_cluster(
    server: &Server,
    req: PutClusterCapacityProvidersRequest,
    _: &Caller<'_>,
) -> Result<PutClusterCapacityProvidersResponse, ApiError> {
    let c = server
        .write(move |st| {
            let name = clusters::active(server, st, Some(&req.cluster))?.cluster_name.clone().unwrap_or_default();
            for p in &req.capacity_providers {
                if !exists(st, p) {
                    return Err(ApiError::invalid(format!("The specified capacity provider {p} does not exist.")));
                }
            }
            if !req.default_capacity_provider_strategy.is_empty() {
                check_strategy(st, &req.default_capacity_provider_strategy)?;
                for i in &req.default_capacity_provider_strategy {
                    if !req.capacity_providers.contains(&i.capacity_provider) {
                        return Err(ApiError::invalid(format!(
                            "The default strategy names {}, which is not among the cluster's capacity providers.",
                            i.capacity_provider
                        )));
                    }
                }
            }
            let c = st.clusters.get_mut(&name).ok_or_else(ApiError::cluster_not_found)?;
            c.capacity_providers = Some(req.capacity_providers.clone());
            c.default_capacity_provider_strategy = Some(req.default_capacity_provider_strategy.clone());
            let c = c.clone();
            Ok((c.clone(), records::CLUSTERS.put(Txn::new(), &name, &c)))
        })
        .await?;
    let _ = now_secs();
    Ok(PutClusterCapacityProvidersResponse { cluster: Some(c) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(p: &str, weight: i32, base: i32) -> CapacityProviderStrategyItem {
        CapacityProviderStrategyItem {
            capacity_provider: p.into(),
            weight: Some(weight),
            base: Some(base),
        }
    }

    #[test]
    fn base_then_weight() {
        assert_eq!(
            split(&[item("A", 1, 2), item("B", 3, 0)], 10),
            vec![("A".into(), 4), ("B".into(), 6)]
        );
        assert_eq!(
            split(&[item("A", 1, 0), item("B", 1, 0)], 3),
            vec![("A".into(), 2), ("B".into(), 1)]
        );
        assert_eq!(
            split(&[item("A", 0, 5), item("B", 1, 0)], 3),
            vec![("A".into(), 3)]
        );
        assert_eq!(
            split(&[item("FARGATE", 1, 0), item("FARGATE_SPOT", 4, 0)], 5),
            vec![("FARGATE".into(), 1), ("FARGATE_SPOT".into(), 4)]
        );
    }
}
