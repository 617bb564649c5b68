//! CreateCluster, DescribeClusters, ListClusters, UpdateCluster, UpdateClusterSettings,
//! DeleteCluster.

use super::account_settings::effective_value;
use crate::paginate::{max_results, page, Order};
use crate::state::{records, State};
use crate::Server;
use gantry_api::model::*;
use gantry_api::taskdef::{valid_name, validate_tags};
use gantry_api::{ApiError, ErrorCode};
use gantry_core::Caller;
use gantry_store::Txn;

pub const ACTIVE: &str = "ACTIVE";
pub const INACTIVE: &str = "INACTIVE";

/// The ACTIVE cluster a request names (by name or ARN; `default` when absent).
pub fn active<'a>(
    server: &Server,
    st: &'a State,
    ident: Option<&str>,
) -> Result<&'a Cluster, ApiError> {
    let name = server.arns.cluster_name(ident)?;
    st.clusters
        .get(&name)
        .filter(|c| c.status.as_deref() == Some(ACTIVE))
        .ok_or_else(ApiError::cluster_not_found)
}

fn validate_settings(settings: &[ClusterSetting]) -> Result<(), ApiError> {
    for s in settings {
        let Some(name) = s.name else {
            return Err(ApiError::invalid(
                "Invalid 'settings': every setting needs a name.",
            ));
        };
        match (name, s.value.as_deref()) {
            (ClusterSettingName::ContainerInsights, Some("enabled" | "disabled" | "enhanced")) => {}
            (ClusterSettingName::ContainerInsights, v) => {
                return Err(ApiError::invalid(format!(
                    "Invalid 'settings' value {v:?} for containerInsights: use enabled, disabled or enhanced."
                )))
            }
        }
    }
    Ok(())
}

/// Replaces settings by name, keeping the others.
fn merge_settings(current: &mut Vec<ClusterSetting>, new: &[ClusterSetting]) {
    for s in new {
        match current.iter_mut().find(|c| c.name == s.name) {
            Some(c) => c.value = s.value.clone(),
            None => current.push(s.clone()),
        }
    }
}

pub async fn create(
    server: &Server,
    req: CreateClusterRequest,
    who: &Caller<'_>,
) -> Result<CreateClusterResponse, ApiError> {
    let name = req
        .cluster_name
        .clone()
        .unwrap_or_else(|| "default".to_string());
    if !valid_name(&name) {
        return Err(ApiError::invalid(
            "Invalid 'clusterName': up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed.",
        ));
    }
    validate_tags(req.tags.as_deref().unwrap_or_default())?;
    validate_settings(req.settings.as_deref().unwrap_or_default())?;
    let principal = who.principal().arn.clone();
    let arn = server.arns.cluster(&name);
    let cluster = server
        .write(move |st| {
            if let Some(c) = st
                .clusters
                .get(&name)
                .filter(|c| c.status.as_deref() == Some(ACTIVE))
            {
                // As in ECS, creating an existing cluster returns it unchanged.
                return Ok((c.clone(), Txn::new()));
            }
            for p in req.capacity_providers.iter().flatten() {
                if !super::capacity_providers::exists(st, p) {
                    return Err(ApiError::invalid(format!(
                        "The specified capacity provider {p} does not exist."
                    )));
                }
            }
            if let Some(s) = req
                .default_capacity_provider_strategy
                .as_ref()
                .filter(|s| !s.is_empty())
            {
                super::capacity_providers::check_strategy(st, s)?;
            }
            let insights = effective_value(st, &principal, SettingName::ContainerInsights);
            let mut settings = vec![ClusterSetting {
                name: Some(ClusterSettingName::ContainerInsights),
                value: Some(insights),
            }];
            merge_settings(&mut settings, req.settings.as_deref().unwrap_or_default());
            let c = Cluster {
                cluster_arn: Some(arn),
                cluster_name: Some(name.clone()),
                status: Some(ACTIVE.to_string()),
                configuration: req.configuration,
                registered_container_instances_count: Some(0),
                running_tasks_count: Some(0),
                pending_tasks_count: Some(0),
                active_services_count: Some(0),
                statistics: Some(Vec::new()),
                tags: Some(req.tags.unwrap_or_default()),
                settings: Some(settings),
                capacity_providers: Some(req.capacity_providers.clone().unwrap_or_default()),
                default_capacity_provider_strategy: Some(
                    req.default_capacity_provider_strategy
                        .clone()
                        .unwrap_or_default(),
                ),
                ..Cluster::default()
            };
            st.clusters.insert(name.clone(), c.clone());
            Ok((c.clone(), records::CLUSTERS.put(Txn::new(), &name, &c)))
        })
        .await?;
    Ok(CreateClusterResponse {
        cluster: Some(view(
            &cluster,
            &[
                ClusterField::Settings,
                ClusterField::Configurations,
                ClusterField::Tags,
            ],
        )),
    })
}

/// A cluster as DescribeClusters shows it: tags, settings, configuration and statistics only
/// when asked for with `include`, as in ECS.
fn view(c: &Cluster, include: &[ClusterField]) -> Cluster {
    let mut v = c.clone();
    if !include.contains(&ClusterField::Tags) {
        v.tags = None;
    }
    if !include.contains(&ClusterField::Settings) {
        v.settings = None;
    }
    if !include.contains(&ClusterField::Configurations) {
        v.configuration = None;
    }
    if include.contains(&ClusterField::Statistics) {
        v.statistics = Some(
            [
                ("runningEC2TasksCount", 0),
                ("runningFargateTasksCount", 0),
                ("pendingEC2TasksCount", 0),
                ("pendingFargateTasksCount", 0),
                ("activeEC2ServiceCount", 0),
                ("activeFargateServiceCount", 0),
                ("drainingEC2ServiceCount", 0),
                ("drainingFargateServiceCount", 0),
            ]
            .into_iter()
            .map(|(k, n)| KeyValuePair {
                name: Some(k.to_string()),
                value: Some(n.to_string()),
            })
            .collect(),
        );
    } else {
        v.statistics = Some(Vec::new());
    }
    if !include.contains(&ClusterField::Attachments) {
        v.attachments = None;
    }
    v
}

/// Fills the live counts of instances and tasks.
fn with_counts(st: &State, mut c: Cluster) -> Cluster {
    let name = c.cluster_name.clone().unwrap_or_default();
    c.registered_container_instances_count = Some(
        st.instances
            .values()
            .filter(|i| i.cluster == name && !i.fargate_only && i.status() != "INACTIVE")
            .count() as i32,
    );
    let tasks: Vec<_> = st.tasks.values().filter(|t| t.cluster == name).collect();
    c.running_tasks_count = Some(
        tasks
            .iter()
            .filter(|t| t.state() == crate::state::TaskState::Running)
            .count() as i32,
    );
    c.pending_tasks_count = Some(tasks.iter().filter(|t| t.is_pending()).count() as i32);
    if let Some(stats) = c.statistics.as_mut() {
        for kv in stats.iter_mut() {
            let v = match kv.name.as_deref() {
                Some("runningEC2TasksCount") => c.running_tasks_count,
                Some("pendingEC2TasksCount") => c.pending_tasks_count,
                _ => None,
            };
            if let Some(v) = v {
                kv.value = Some(v.to_string());
            }
        }
    }
    c
}

pub async fn describe(
    server: &Server,
    req: DescribeClustersRequest,
    _: &Caller<'_>,
) -> Result<DescribeClustersResponse, ApiError> {
    let idents = req.clusters.unwrap_or_else(|| vec!["default".to_string()]);
    if idents.len() > 100 {
        return Err(ApiError::invalid(
            "Invalid 'clusters': at most 100 clusters can be described at once.",
        ));
    }
    let include = req.include.unwrap_or_default();
    server.read(|st| {
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for ident in &idents {
            let found = server
                .arns
                .cluster_name(Some(ident))
                .ok()
                .and_then(|name| st.clusters.get(&name));
            match found {
                Some(c) => clusters.push(with_counts(st, view(c, &include))),
                None => failures.push(Failure {
                    arn: Some(if ident.starts_with("arn:") {
                        ident.clone()
                    } else {
                        server.arns.cluster(ident)
                    }),
                    reason: Some("MISSING".to_string()),
                    detail: None,
                }),
            }
        }
        DescribeClustersResponse {
            clusters: Some(clusters),
            failures: Some(failures),
        }
    })
}

pub async fn list(
    server: &Server,
    req: ListClustersRequest,
    _: &Caller<'_>,
) -> Result<ListClustersResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 100)?;
    let names: Vec<String> = server.read(|st| {
        st.clusters
            .values()
            .filter(|c| c.status.as_deref() == Some(ACTIVE))
            .filter_map(|c| c.cluster_name.clone())
            .collect()
    })?;
    let p = page(
        names,
        String::clone,
        Order::Asc,
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(ListClustersResponse {
        cluster_arns: Some(p.items.iter().map(|n| server.arns.cluster(n)).collect()),
        next_token: p.next_token,
    })
}

async fn modify(
    server: &Server,
    ident: &str,
    f: impl FnOnce(&mut Cluster) + Send,
) -> Result<Cluster, ApiError> {
    let ident = ident.to_string();
    server
        .write(move |st| {
            let name = active(server, st, Some(&ident))?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let c = st
                .clusters
                .get_mut(&name)
                .ok_or_else(ApiError::cluster_not_found)?;
            f(c);
            let c = c.clone();
            Ok((c.clone(), records::CLUSTERS.put(Txn::new(), &name, &c)))
        })
        .await
}

pub async fn update(
    server: &Server,
    req: UpdateClusterRequest,
    _: &Caller<'_>,
) -> Result<UpdateClusterResponse, ApiError> {
    let settings = req.settings.unwrap_or_default();
    validate_settings(&settings)?;
    let configuration = req.configuration;
    let c = modify(server, &req.cluster, move |c| {
        merge_settings(c.settings.get_or_insert_with(Vec::new), &settings);
        if configuration.is_some() {
            c.configuration = configuration;
        }
    })
    .await?;
    Ok(UpdateClusterResponse {
        cluster: Some(view(
            &c,
            &[ClusterField::Settings, ClusterField::Configurations],
        )),
    })
}

pub async fn update_settings(
    server: &Server,
    req: UpdateClusterSettingsRequest,
    _: &Caller<'_>,
) -> Result<UpdateClusterSettingsResponse, ApiError> {
    validate_settings(&req.settings)?;
    let settings = req.settings;
    let c = modify(server, &req.cluster, move |c| {
        merge_settings(c.settings.get_or_insert_with(Vec::new), &settings)
    })
    .await?;
    Ok(UpdateClusterSettingsResponse {
        cluster: Some(view(&c, &[ClusterField::Settings])),
    })
}

pub async fn delete(
    server: &Server,
    req: DeleteClusterRequest,
    _: &Caller<'_>,
) -> Result<DeleteClusterResponse, ApiError> {
    let c = server
        .write(move |st| {
            let name = active(server, st, Some(&req.cluster))?.cluster_name.clone().unwrap_or_default();
            if st.instances.values().any(|i| i.cluster == name && !i.fargate_only && i.status() != "INACTIVE") {
                return Err(ApiError::new(
                    ErrorCode::ClusterContainsContainerInstancesException,
                    "The Cluster cannot be deleted while Container Instances are active or draining.",
                ));
            }
            if st.tasks.values().any(|t| t.cluster == name && !t.is_stopped()) {
                return Err(ApiError::new(
                    ErrorCode::ClusterContainsTasksException,
                    "The Cluster cannot be deleted while Tasks are active.",
                ));
            }
            let c = st.clusters.get_mut(&name).ok_or_else(ApiError::cluster_not_found)?;
            c.status = Some(INACTIVE.to_string());
            let c = c.clone();
            Ok((c.clone(), records::CLUSTERS.put(Txn::new(), &name, &c)))
        })
        .await?;
    Ok(DeleteClusterResponse {
        cluster: Some(view(&c, &[])),
    })
}
