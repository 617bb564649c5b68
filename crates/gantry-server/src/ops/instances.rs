//! RegisterContainerInstance, DeregisterContainerInstance, DescribeContainerInstances,
//! ListContainerInstances; and the views placement and agents share.

use super::clusters;
use crate::paginate::{max_results, page, Order};
use crate::state::{records, InstanceRecord, State};
use crate::{now_secs, Server};
use gantry_api::model::*;
use gantry_api::{ApiError, ErrorCode};
use gantry_core::Caller;
use gantry_scheduler::{Instance, Proto, Status};
use gantry_store::Txn;
use std::collections::{BTreeMap, BTreeSet};

/// ECS's default reserved ports on a container instance.
pub const DEFAULT_RESERVED_PORTS: [u16; 6] = [22, 2375, 2376, 51678, 51679, 51680];

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Whether the instance's agent counts as connected now.
pub fn agent_connected(server: &Server, r: &InstanceRecord, now: f64) -> bool {
    r.has_agent
        && (r.open_polls > 0 || now - r.last_seen <= server.config.agent_timeout.as_secs_f64())
}

/// The instance as placement sees it: registered minus what its unstopped tasks hold, with its
/// attributes, agent and task groups.
pub fn placement_view(server: &Server, st: &State, r: &InstanceRecord, now: f64) -> Instance {
    let mut used_ports: BTreeSet<(u16, Proto)> = r.reserved_ports().into_iter().collect();
    let empty = crate::state::Usage::default();
    let u = st.usage.get(&r.id).unwrap_or(&empty);
    used_ports.extend(u.ports.keys().copied());
    let (cpu, mem, gpu) = (
        r.registered("CPU") - u.cpu,
        r.registered("MEMORY") - u.memory,
        r.registered_gpus() - u.gpu,
    );
    let running = u.running;
    let groups: BTreeMap<String, u32> = u.groups.clone();
    Instance {
        id: r
            .instance
            .container_instance_arn
            .clone()
            .unwrap_or_default(),
        status: match r.status() {
            "ACTIVE" => Status::Active,
            "DRAINING" => Status::Draining,
            _ => Status::Inactive,
        },
        agent_connected: agent_connected(server, r, now),
        remaining_cpu: cpu,
        remaining_memory: mem,
        remaining_gpu: gpu,
        used_ports,
        attributes: r
            .instance
            .attributes
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.value.clone()))
            .collect(),
        agent_version: r
            .instance
            .version_info
            .as_ref()
            .and_then(|v| v.agent_version.clone()),
        ec2_instance_id: r.instance.ec2_instance_id.clone(),
        registered_at: r.instance.registered_at.unwrap_or(0.0),
        running_tasks: running,
        groups,
    }
}

fn int_resource(name: &str, v: i64) -> Resource {
    Resource {
        name: Some(name.to_string()),
        r#type: Some("INTEGER".to_string()),
        integer_value: Some(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32),
        double_value: Some(0.0),
        long_value: Some(0),
        ..Resource::default()
    }
}

fn ports_resource(name: &str, ports: impl Iterator<Item = u16>) -> Resource {
    Resource {
        name: Some(name.to_string()),
        r#type: Some("STRINGSET".to_string()),
        string_set_value: Some(ports.map(|p| p.to_string()).collect()),
        double_value: Some(0.0),
        long_value: Some(0),
        integer_value: Some(0),
    }
}

/// The instance as DescribeContainerInstances shows it.
pub fn view(server: &Server, st: &State, r: &InstanceRecord, now: f64) -> ContainerInstance {
    let p = placement_view(server, st, r, now);
    let mut c = r.instance.clone();
    c.agent_connected = Some(p.agent_connected);
    c.running_tasks_count = Some(p.running_tasks as i32);
    c.pending_tasks_count = Some(st.usage.get(&r.id).map_or(0, |u| u.pending) as i32);
    let tcp = p
        .used_ports
        .iter()
        .filter(|(_, pr)| *pr == Proto::Tcp)
        .map(|(n, _)| *n);
    let udp = p
        .used_ports
        .iter()
        .filter(|(_, pr)| *pr == Proto::Udp)
        .map(|(n, _)| *n);
    let mut remaining = vec![
        int_resource("CPU", p.remaining_cpu),
        int_resource("MEMORY", p.remaining_memory),
        ports_resource("PORTS", tcp),
        ports_resource("PORTS_UDP", udp),
    ];
    if r.registered_gpus() > 0 {
        remaining.push(int_resource("GPU", p.remaining_gpu));
    }
    c.remaining_resources = Some(remaining);
    c
}

/// What a registration says about a host.
pub struct Registration {
    pub cluster: Option<String>,
    pub existing_arn: Option<String>,
    pub total_resources: Vec<Resource>,
    pub version_info: Option<VersionInfo>,
    pub attributes: Vec<Attribute>,
    pub hostname: Option<String>,
    pub tags: Vec<Tag>,
    pub has_agent: bool,
    /// `ec2`, `fargate` or `both`.
    pub capacity: String,
    pub capacity_provider: Option<String>,
    /// CIDRs other networks hold on the agent's engine.
    pub held_ranges: Vec<String>,
}

fn resource_int(rs: &[Resource], name: &str) -> Option<i64> {
    rs.iter()
        .find(|r| r.name.as_deref() == Some(name))
        .and_then(|r| r.integer_value.map(i64::from).or(r.long_value))
}

/// Registers (or re-registers) a container instance.
pub async fn register_instance(
    server: &Server,
    reg: Registration,
) -> Result<ContainerInstance, ApiError> {
    let rs = &reg.total_resources;
    let cpu = resource_int(rs, "CPU").unwrap_or(0);
    let mem = resource_int(rs, "MEMORY").unwrap_or(0);
    if cpu < 0 || mem < 0 {
        return Err(ApiError::invalid(
            "Invalid 'totalResources': CPU and MEMORY must not be negative.",
        ));
    }
    let ports = |name: &str, default: &[u16]| -> Result<Vec<u16>, ApiError> {
        match rs.iter().find(|r| r.name.as_deref() == Some(name)) {
            None => Ok(default.to_vec()),
            Some(r) => r
                .string_set_value
                .iter()
                .flatten()
                .map(|p| {
                    p.parse::<u16>().map_err(|_| {
                        ApiError::invalid(format!(
                            "Invalid 'totalResources' {name} entry {p:?}: expected a port number."
                        ))
                    })
                })
                .collect(),
        }
    };
    let tcp = ports("PORTS", &DEFAULT_RESERVED_PORTS)?;
    let udp = ports("PORTS_UDP", &[])?;
    let mut attributes = reg.attributes.clone();
    for a in &attributes {
        if a.name.is_empty() || a.name.len() > 128 {
            return Err(ApiError::invalid(
                "Invalid 'attributes': names must be 1 to 128 characters.",
            ));
        }
    }
    for (name, value) in [("ecs.os-type", "linux"), ("ecs.os-family", "LINUX")] {
        if !attributes.iter().any(|a| a.name == name) {
            attributes.push(Attribute {
                name: name.into(),
                value: Some(value.into()),
                ..Attribute::default()
            });
        }
    }
    let now = now_secs();
    let arns = server.arns.clone();
    server
        .write(move |st| {
            let cluster = clusters::active(server, st, reg.cluster.as_deref())?;
            let cluster_name = cluster.cluster_name.clone().unwrap_or_default();
            // Re-registration keeps the ARN (and so the tasks) of an instance the caller names.
            let existing = reg
                .existing_arn
                .as_deref()
                .and_then(|a| arns.resource_id("container-instance", a))
                .and_then(|id| st.instances.get(id))
                .filter(|r| r.cluster == cluster_name && r.status() != "INACTIVE");
            // Re-registration keeps what operators set: DRAINING, custom attributes, tags.
            let (id, version, registered_at, old_rev, status, mut attributes, tags) = match existing
            {
                Some(r) => {
                    let mut attrs = attributes.clone();
                    for a in r.instance.attributes.iter().flatten() {
                        if !builtin(&a.name) && !attrs.iter().any(|x| x.name == a.name) {
                            attrs.push(a.clone());
                        }
                    }
                    let tags = if reg.tags.is_empty() {
                        r.instance.tags.clone().unwrap_or_default()
                    } else {
                        reg.tags.clone()
                    };
                    (
                        r.id.clone(),
                        r.instance.version.unwrap_or(1) + 1,
                        r.instance.registered_at,
                        r.revision,
                        r.status().to_string(),
                        attrs,
                        tags,
                    )
                }
                None => (
                    new_id(),
                    1,
                    Some(now),
                    0,
                    "ACTIVE".to_string(),
                    attributes.clone(),
                    reg.tags.clone(),
                ),
            };
            attributes.dedup_by(|a, b| a.name == b.name);
            let instance = ContainerInstance {
                container_instance_arn: Some(arns.container_instance(&cluster_name, &id)),
                ec2_instance_id: reg.hostname.clone(),
                version: Some(version),
                version_info: reg.version_info.clone(),
                registered_resources: Some(vec![
                    int_resource("CPU", cpu),
                    int_resource("MEMORY", mem),
                    ports_resource("PORTS", tcp.iter().copied()),
                    ports_resource("PORTS_UDP", udp.iter().copied()),
                ]),
                status: Some(status),
                agent_connected: Some(false),
                attributes: Some(attributes),
                registered_at,
                tags: Some(tags),
                attachments: Some(Vec::new()),
                ..ContainerInstance::default()
            };
            let mut instance = instance;
            instance.capacity_provider_name = reg.capacity_provider.clone();
            let rec = InstanceRecord {
                capacity_provider: reg.capacity_provider.clone(),
                held_ranges: reg.held_ranges.clone(),
                fargate: reg.capacity != "ec2",
                fargate_only: reg.capacity == "fargate",
                cluster: cluster_name,
                id: id.clone(),
                instance,
                has_agent: reg.has_agent,
                last_seen: if reg.has_agent { now } else { 0.0 },
                open_polls: 0,
                revision: old_rev + 1,
            };
            let txn = records::INSTANCES.put(Txn::new(), &id, &rec);
            st.instances.insert(id.clone(), rec.clone());
            st.bumped.push(id);
            st.topology += 1;
            Ok((view(server, st, &rec, now), txn))
        })
        .await
}

pub async fn register(
    server: &Server,
    req: RegisterContainerInstanceRequest,
    _: &Caller<'_>,
) -> Result<RegisterContainerInstanceResponse, ApiError> {
    let c = register_instance(
        server,
        Registration {
            cluster: req.cluster,
            existing_arn: req.container_instance_arn,
            total_resources: req.total_resources.unwrap_or_default(),
            version_info: req.version_info,
            attributes: req.attributes.unwrap_or_default(),
            hostname: None,
            tags: req.tags.unwrap_or_default(),
            has_agent: false,
            capacity: "ec2".into(),
            capacity_provider: None,
            held_ranges: Vec::new(),
        },
    )
    .await?;
    Ok(RegisterContainerInstanceResponse {
        container_instance: Some(c),
    })
}

/// Finds an instance of `cluster` by id or ARN.
pub fn find<'a>(
    server: &Server,
    st: &'a State,
    cluster: &str,
    ident: &str,
) -> Option<&'a InstanceRecord> {
    let id = server.arns.resource_id("container-instance", ident)?;
    st.instances
        .get(id)
        .filter(|r| r.cluster == cluster && !r.fargate_only)
}

pub async fn deregister(
    server: &Server,
    req: DeregisterContainerInstanceRequest,
    _: &Caller<'_>,
) -> Result<DeregisterContainerInstanceResponse, ApiError> {
    let force = req.force.unwrap_or(false);
    let now = now_secs();
    let c = server
        .write(move |st| {
            let cluster = clusters::active(server, st, req.cluster.as_deref())?.cluster_name.clone().unwrap_or_default();
            let id = find(server, st, &cluster, &req.container_instance)
                .map(|r| r.id.clone())
                .ok_or_else(|| ApiError::invalid(format!("Container instance {} not found.", req.container_instance)))?;
            let running = st.instance_tasks(&id).any(|t| !t.is_stopped());
            if running && !force {
                return Err(ApiError::invalid(
                    "Found running tasks on the instance. Stop them first, or deregister with force (their containers keep running on the host).",
                ));
            }
            let rec = st.instances.get_mut(&id).ok_or_else(|| ApiError::invalid("Container instance not found."))?;
                                    rec.instance.status = Some("INACTIVE".to_string());
            let rec = rec.clone();
            st.bump(&id);
            st.topology += 1;
            // Its tasks can no longer be reported on: they are stopped as far as ECS is concerned.
            let mut txn = Txn::new();
            let orphans: Vec<String> = st.instance_tasks(&id).filter(|t| !t.is_stopped()).map(|t| t.id.clone()).collect();
            for tid in orphans {
                let Some(t) = st.tasks.get_mut(&tid) else { continue };
                let old = t.last_status().to_string();
                t.task.desired_status = Some("STOPPED".into());
                t.task.last_status = Some("STOPPED".into());
                t.task.stop_code.get_or_insert(TaskStopCode::ServiceSchedulerInitiated);
                t.task.stopped_reason.get_or_insert_with(|| "The container instance was deregistered.".into());
                t.task.stopping_at.get_or_insert(now);
                t.task.stopped_at = Some(now);
                let t = t.clone();
                st.tally(&t, &old, -1);
                txn = records::TASKS.put(txn, &tid, &t);
            }
            Ok((view(server, st, &rec, now), records::INSTANCES.put(txn, &id, &rec)))
        })
        .await?;
    Ok(DeregisterContainerInstanceResponse {
        container_instance: Some(c),
    })
}

pub async fn describe(
    server: &Server,
    req: DescribeContainerInstancesRequest,
    _: &Caller<'_>,
) -> Result<DescribeContainerInstancesResponse, ApiError> {
    if req.container_instances.len() > 100 {
        return Err(ApiError::invalid(
            "Invalid 'containerInstances': at most 100 can be described at once.",
        ));
    }
    let with_tags = req
        .include
        .unwrap_or_default()
        .contains(&ContainerInstanceField::Tags);
    let now = now_secs();
    server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut failures = Vec::new();
        for ident in &req.container_instances {
            match find(server, st, &cluster, ident) {
                Some(r) => {
                    let mut v = view(server, st, r, now);
                    if !with_tags {
                        v.tags = None;
                    }
                    out.push(v);
                }
                None => failures.push(Failure {
                    arn: Some(if ident.starts_with("arn:") {
                        ident.clone()
                    } else {
                        server.arns.container_instance(&cluster, ident)
                    }),
                    reason: Some("MISSING".to_string()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeContainerInstancesResponse {
            container_instances: Some(out),
            failures: Some(failures),
        })
    })?
}

pub async fn list(
    server: &Server,
    req: ListContainerInstancesRequest,
    _: &Caller<'_>,
) -> Result<ListContainerInstancesResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 100)?;
    let filter = match req.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(super::placement::expression(f)?),
        None => None,
    };
    let status = req.status.map(|s| s.as_str().to_string());
    let now = now_secs();
    let arns: Vec<String> = server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        let mut v: Vec<String> = st
            .instances
            .values()
            .filter(|r| r.cluster == cluster && !r.fargate_only)
            .filter(|r| match &status {
                Some(s) => r.status() == s,
                None => r.status() != "INACTIVE",
            })
            .filter(|r| {
                filter.as_ref().is_none_or(|f| {
                    gantry_scheduler::matches(&f.expr, &placement_view(server, st, r, now))
                })
            })
            .filter_map(|r| r.instance.container_instance_arn.clone())
            .collect();
        v.sort();
        Ok::<_, ApiError>(v)
    })??;
    let p = page(
        arns,
        String::clone,
        Order::Asc,
        req.next_token.as_deref(),
        limit,
    )?;
    Ok(ListContainerInstancesResponse {
        container_instance_arns: Some(p.items),
        next_token: p.next_token,
    })
}

/// Built-in attributes (set by ECS or the agent) cannot be changed with PutAttributes or
/// DeleteAttributes.
fn builtin(name: &str) -> bool {
    name.starts_with("ecs.") || name.starts_with("com.amazonaws.ecs.")
}

/// Custom attributes per resource, as in ECS.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 10;

fn check_attribute(a: &Attribute, with_value: bool) -> Result<(), ApiError> {
    let name_ok = !a.name.is_empty()
        && a.name.len() <= 128
        && a.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./\\".contains(c));
    if !name_ok {
        return Err(ApiError::invalid(format!(
            "Invalid attribute name {:?}: 1 to 128 letters, numbers, hyphens, underscores, slashes, back slashes or periods.",
            a.name
        )));
    }
    if builtin(&a.name) {
        return Err(ApiError::invalid(format!(
            "Attribute {} is set by ECS and cannot be changed.",
            a.name
        )));
    }
    if let (true, Some(v)) = (with_value, a.value.as_deref()) {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.trim() == v
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c));
        if !ok {
            return Err(ApiError::invalid(format!(
                "Invalid value {v:?} for attribute {}: 1 to 128 letters, numbers, hyphens, underscores, periods, at signs, slashes, back slashes, colons or spaces, without leading or trailing whitespace.",
                a.name
            )));
        }
    }
    if a.target_type
        .is_some_and(|t| t != TargetType::ContainerInstance)
    {
        return Err(ApiError::invalid(
            "Invalid 'targetType': only container-instance is supported.",
        ));
    }
    Ok(())
}

/// The instance an attribute targets.
fn target<'a>(
    server: &Server,
    st: &'a State,
    cluster: &str,
    a: &Attribute,
) -> Result<&'a InstanceRecord, ApiError> {
    let ident = a.target_id.as_deref().ok_or_else(|| {
        ApiError::invalid(format!(
            "Attribute {} needs a targetId (a container instance).",
            a.name
        ))
    })?;
    find(server, st, cluster, ident).ok_or_else(|| {
        ApiError::new(
            ErrorCode::TargetNotFoundException,
            format!("Could not find {ident}."),
        )
    })
}

/// Put and Delete attributes: checks the request, resolves every target first (so that a bad
/// one changes nothing), then applies `edit` to each target's attribute list in one commit.
async fn change_attributes(
    server: &Server,
    cluster: Option<String>,
    attributes: Vec<Attribute>,
    with_values: bool,
    edit: fn(&mut Vec<Attribute>, &Attribute) -> Result<(), ApiError>,
) -> Result<Vec<Attribute>, ApiError> {
    if attributes.is_empty() || attributes.len() > 10 {
        return Err(ApiError::invalid(
            "Invalid 'attributes': give between 1 and 10 attributes.",
        ));
    }
    for a in &attributes {
        check_attribute(a, with_values)?;
    }
    server
        .write(move |st| {
            let cluster = clusters::active(server, st, cluster.as_deref())?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let mut targets = Vec::new();
            for a in &attributes {
                targets.push((target(server, st, &cluster, a)?.id.clone(), a.clone()));
            }
            let mut txn = Txn::new();
            let mut out = Vec::new();
            for (id, a) in targets {
                let Some(rec) = st.instances.get_mut(&id) else {
                    continue;
                };
                edit(rec.instance.attributes.get_or_insert_with(Vec::new), &a)?;
                txn = records::INSTANCES.put(txn, &id, &*rec);
                out.push(Attribute {
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: rec.instance.container_instance_arn.clone(),
                    ..a
                });
                st.mark_dirty(&id);
            }
            Ok((out, txn))
        })
        .await
}

pub async fn put_attributes(
    server: &Server,
    req: PutAttributesRequest,
    _: &Caller<'_>,
) -> Result<PutAttributesResponse, ApiError> {
    let attrs = change_attributes(server, req.cluster, req.attributes, true, |list, a| {
        match list.iter_mut().find(|x| x.name == a.name) {
            Some(x) => x.value = a.value.clone(),
            None => {
                if list.iter().filter(|x| !builtin(&x.name)).count() >= MAX_CUSTOM_ATTRIBUTES {
                    return Err(ApiError::new(
                        ErrorCode::AttributeLimitExceededException,
                        format!("A container instance can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes."),
                    ));
                }
                list.push(Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    ..Attribute::default()
                });
            }
        }
        Ok(())
    })
    .await?;
    Ok(PutAttributesResponse {
        attributes: Some(attrs),
    })
}

pub async fn delete_attributes(
    server: &Server,
    req: DeleteAttributesRequest,
    _: &Caller<'_>,
) -> Result<DeleteAttributesResponse, ApiError> {
    let attrs = change_attributes(server, req.cluster, req.attributes, false, |list, a| {
        list.retain(|x| x.name != a.name);
        Ok(())
    })
    .await?;
    Ok(DeleteAttributesResponse {
        attributes: Some(attrs),
    })
}

pub async fn list_attributes(
    server: &Server,
    req: ListAttributesRequest,
    _: &Caller<'_>,
) -> Result<ListAttributesResponse, ApiError> {
    let limit = max_results(req.max_results, 100, 100)?;
    if req.attribute_value.is_some() && req.attribute_name.is_none() {
        return Err(ApiError::invalid(
            "'attributeValue' can only be given with 'attributeName'.",
        ));
    }
    let all: Vec<Attribute> = server.read(|st| {
        let cluster = clusters::active(server, st, req.cluster.as_deref())?
            .cluster_name
            .clone()
            .unwrap_or_default();
        let mut out = Vec::new();
        for r in st
            .instances
            .values()
            .filter(|r| r.cluster == cluster && r.status() != "INACTIVE")
        {
            for a in r.instance.attributes.iter().flatten() {
                if req.attribute_name.as_ref().is_some_and(|n| *n != a.name) {
                    continue;
                }
                if req
                    .attribute_value
                    .as_ref()
                    .is_some_and(|v| Some(v) != a.value.as_ref())
                {
                    continue;
                }
                out.push(Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    target_type: Some(TargetType::ContainerInstance),
                    target_id: r.instance.container_instance_arn.clone(),
                });
            }
        }
        Ok::<_, ApiError>(out)
    })??;
    let key = |a: &Attribute| format!("{}\t{}", a.target_id.as_deref().unwrap_or_default(), a.name);
    let mut all = all;
    all.sort_by_key(key);
    let p = page(all, key, Order::Asc, req.next_token.as_deref(), limit)?;
    Ok(ListAttributesResponse {
        attributes: Some(p.items),
        next_token: p.next_token,
    })
}

pub async fn update_state(
    server: &Server,
    req: UpdateContainerInstancesStateRequest,
    _: &Caller<'_>,
) -> Result<UpdateContainerInstancesStateResponse, ApiError> {
    if req.container_instances.is_empty() || req.container_instances.len() > 10 {
        return Err(ApiError::invalid(
            "Invalid 'containerInstances': give between 1 and 10 container instances.",
        ));
    }
    let status = match req.status {
        ContainerInstanceStatus::Active => "ACTIVE",
        ContainerInstanceStatus::Draining => "DRAINING",
        other => {
            return Err(ApiError::invalid(format!(
                "Invalid 'status' {}: use ACTIVE or DRAINING.",
                other.as_str()
            )))
        }
    };
    let now = now_secs();
    let (done, failures) = server
        .write(move |st| {
            let cluster = clusters::active(server, st, req.cluster.as_deref())?
                .cluster_name
                .clone()
                .unwrap_or_default();
            let mut txn = Txn::new();
            let mut done = Vec::new();
            let mut failures = Vec::new();
            for ident in &req.container_instances {
                let Some(id) = find(server, st, &cluster, ident).map(|r| r.id.clone()) else {
                    failures.push(Failure {
                        arn: Some(ident.clone()),
                        reason: Some("MISSING".into()),
                        detail: None,
                    });
                    continue;
                };
                let Some(rec) = st.instances.get_mut(&id) else {
                    continue;
                };
                if rec.status() == "INACTIVE" {
                    failures.push(Failure {
                        arn: rec.instance.container_instance_arn.clone(),
                        reason: Some("INACTIVE".into()),
                        detail: None,
                    });
                    continue;
                }
                if rec.status() != status {
                    rec.instance.status = Some(status.to_string());
                    rec.instance.version = Some(rec.instance.version.unwrap_or(1) + 1);
                    txn = records::INSTANCES.put(txn, &id, &*rec);
                }
                let rec = rec.clone();
                st.mark_dirty(&id);
                done.push(view(server, st, &rec, now));
            }
            Ok(((done, failures), txn))
        })
        .await?;
    Ok(UpdateContainerInstancesStateResponse {
        container_instances: Some(done),
        failures: Some(failures),
    })
}
