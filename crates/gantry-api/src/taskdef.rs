//! The rules of RegisterTaskDefinition: validation as ECS applies it, and the normalisation ECS
//! performs before it stores a revision (task cpu/memory as units and MiB, container defaults).
//!
//! Every violation is a `ClientException` whose message names the offending field.

use crate::error::ApiError;
use crate::model::{
    Attribute, Compatibility, ContainerCondition, ContainerDefinition, LogConfiguration, LogDriver,
    NetworkMode, RegisterTaskDefinitionRequest, Tag, TaskDefinition, TaskDefinitionStatus,
    TransportProtocol,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// At most this many containers per task definition.
pub const MAX_CONTAINERS: usize = 10;
/// Docker refuses a memory limit under 6 MiB.
pub const MIN_CONTAINER_MEMORY_MIB: i32 = 6;

/// The Fargate task sizes: cpu units → allowed memory in MiB.
pub fn fargate_memory_allowed(cpu: u32, memory: u32) -> bool {
    let gib = |g: u32| g * 1024;
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (gib(1)..=gib(4)).contains(&memory) && memory.is_multiple_of(1024),
        1024 => (gib(2)..=gib(8)).contains(&memory) && memory.is_multiple_of(1024),
        2048 => (gib(4)..=gib(16)).contains(&memory) && memory.is_multiple_of(1024),
        4096 => (gib(8)..=gib(30)).contains(&memory) && memory.is_multiple_of(1024),
        8192 => (gib(16)..=gib(60)).contains(&memory) && memory.is_multiple_of(gib(4)),
        16384 => (gib(32)..=gib(120)).contains(&memory) && memory.is_multiple_of(gib(8)),
        _ => false,
    }
}

/// Task-level cpu: `"256"` units or `"0.25 vCPU"`. Returns cpu units.
pub fn parse_task_cpu(s: &str) -> Option<u32> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(v) = lower.strip_suffix("vcpu") {
        let v: f64 = v.trim().parse().ok()?;
        let units = v * 1024.0;
        return (units.is_finite() && units > 0.0 && units.fract() == 0.0 && units <= 1e7)
            .then_some(units as u32);
    }
    t.parse::<u32>().ok().filter(|&u| u > 0)
}

/// Task-level memory: `"512"` MiB or `"1GB"` / `"0.5 GB"`. Returns MiB.
pub fn parse_task_memory(s: &str) -> Option<u32> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    if let Some(v) = lower.strip_suffix("gb") {
        let v: f64 = v.trim().parse().ok()?;
        let mib = v * 1024.0;
        return (mib.is_finite() && mib > 0.0 && mib.fract() == 0.0 && mib <= 1e8)
            .then_some(mib as u32);
    }
    t.parse::<u32>().ok().filter(|&m| m > 0)
}

fn err(msg: impl Into<String>) -> ApiError {
    ApiError::client(msg)
}

/// Family and container names: 1–255 letters, digits, hyphens and underscores.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Tags as ECS checks them on every resource: at most 50, keys 1–128 characters, values up to 256,
/// keys unique, the `aws:` prefix reserved.
pub fn validate_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(ApiError::invalid(
            "Too many tags: at most 50 are allowed on a resource.",
        ));
    }
    let mut seen = HashSet::new();
    for t in tags {
        let key = t.key.as_deref().unwrap_or("");
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ApiError::invalid(
                "Tag keys must be 1 to 128 characters long.",
            ));
        }
        if t.value.as_deref().unwrap_or("").chars().count() > 256 {
            return Err(ApiError::invalid(format!(
                "The value of tag '{key}' is longer than 256 characters."
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::invalid(format!(
                "Tag key '{key}' uses the reserved prefix 'aws:'."
            )));
        }
        if !seen.insert(key) {
            return Err(ApiError::invalid(format!("Tag key '{key}' is duplicated.")));
        }
    }
    Ok(())
}

/// Checks a registration and builds the revision ECS would store (without ARN, revision and
/// registration metadata, which the caller assigns). Tags are validated but not part of it.
pub fn build(req: &RegisterTaskDefinitionRequest) -> Result<TaskDefinition, ApiError> {
    if !valid_name(&req.family) {
        return Err(err(
            "Invalid 'family': up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ));
    }
    validate_tags(req.tags.as_deref().unwrap_or_default())?;
    let containers = &req.container_definitions;
    if containers.is_empty() {
        return Err(err(
            "Invalid 'containerDefinitions': Container list cannot be empty.",
        ));
    }
    if containers.len() > MAX_CONTAINERS {
        return Err(err(format!(
            "Invalid 'containerDefinitions': a task definition can have at most {MAX_CONTAINERS} containers, found {}.",
            containers.len()
        )));
    }
    if let Some(c) = containers
        .iter()
        .find(|c| c.environment_files.as_ref().is_some_and(|f| !f.is_empty()))
    {
        return Err(ApiError::client(format!(
            "Container '{}': environmentFiles are S3 objects, and gantry does not serve S3 yet; put the variables in 'environment', or in 'secrets' from Secrets Manager or SSM.",
            c.name.as_deref().unwrap_or_default()
        )));
    }
    if let Some((c, param)) = containers.iter().find_map(|c| {
        let p = &c.repository_credentials.as_ref()?.credentials_parameter;
        let ssm = p.starts_with("arn:aws:ssm:") || p.starts_with('/');
        (ssm || p.is_empty()).then_some((c, p))
    }) {
        return Err(ApiError::client(format!(
            "Container '{}': repositoryCredentials.credentialsParameter must name a Secrets Manager secret (its ARN, or its name), not {param:?}.",
            c.name.as_deref().unwrap_or_default()
        )));
    }
    for c in containers {
        if let Some(l) = &c.log_configuration {
            check_awslogs(c.name.as_deref().unwrap_or_default(), l)?;
        }
    }
    let compat = req.requires_compatibilities.clone().unwrap_or_default();
    let fargate = compat.contains(&Compatibility::Fargate);
    let mode = req.network_mode.unwrap_or(NetworkMode::Bridge);

    let task_cpu = match req.cpu.as_deref() {
        None => None,
        Some(s) => Some(
            parse_task_cpu(s)
                .ok_or_else(|| err(format!("Invalid 'cpu' setting for task: {s:?}.")))?,
        ),
    };
    let task_memory = match req.memory.as_deref() {
        None => None,
        Some(s) => Some(
            parse_task_memory(s)
                .ok_or_else(|| err(format!("Invalid 'memory' setting for task: {s:?}.")))?,
        ),
    };
    if let Some(c) = task_cpu {
        if !fargate && !(128..=196_608).contains(&c) {
            return Err(err(
                "Invalid 'cpu' setting for task: must be between 128 and 196608 CPU units.",
            ));
        }
    }
    if let Some(m) = task_memory {
        if m < 128 {
            return Err(err(
                "Invalid 'memory' setting for task: the minimum is 128 MiB.",
            ));
        }
    }
    if fargate {
        if mode != NetworkMode::Awsvpc {
            return Err(err(
                "Invalid 'networkMode': Fargate only supports network mode 'awsvpc'.",
            ));
        }
        let cpu = task_cpu
            .ok_or_else(|| err("Fargate requires that 'cpu' be defined at the task level."))?;
        let mem = task_memory
            .ok_or_else(|| err("Fargate requires that 'memory' be defined at the task level."))?;
        if !fargate_memory_allowed(cpu, mem) {
            return Err(err(format!(
                "Invalid 'cpu' setting for task: no Fargate configuration exists for given values: {cpu} CPU, {mem} memory."
            )));
        }
    }

    let names: BTreeMap<&str, &ContainerDefinition> = containers
        .iter()
        .map(|c| (c.name.as_deref().unwrap_or(""), c))
        .collect();
    let mut seen = HashSet::new();
    let volume_names: BTreeSet<&str> = req
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_deref().unwrap_or(""))
        .collect();
    if let Some(vols) = &req.volumes {
        let mut seen_vol = HashSet::new();
        for v in vols {
            let n = v.name.as_deref().unwrap_or("");
            if !valid_name(n) {
                return Err(err(format!("Invalid 'volumes.name' {n:?}: up to 255 letters, numbers, hyphens, and underscores are allowed.")));
            }
            if !seen_vol.insert(n) {
                return Err(err(format!(
                    "Invalid 'volumes': the volume name '{n}' is used more than once."
                )));
            }
        }
    }

    let mut sum_mem: i64 = 0;
    let mut sum_cpu: i64 = 0;
    let mut static_ports = HashSet::new();
    let mut essential = 0;
    let mut out_containers = Vec::with_capacity(containers.len());
    for c in containers {
        let name = c.name.as_deref().unwrap_or("");
        if name.is_empty() {
            return Err(err(
                "Invalid 'containerDefinitions.name': Container.name should not be null or empty.",
            ));
        }
        if !valid_name(name) {
            return Err(err(format!(
                "Invalid 'containerDefinitions.name' {name:?}: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed."
            )));
        }
        if !seen.insert(name) {
            return Err(err(format!(
                "Invalid 'containerDefinitions.name': duplicate container name '{name}'."
            )));
        }
        let at = |field: &str| format!("containerDefinitions[{name}].{field}");
        if c.image.as_deref().unwrap_or("").trim().is_empty() {
            return Err(err(format!(
                "Invalid '{}': Container.image should not be null or empty.",
                at("image")
            )));
        }
        let cpu = c.cpu.unwrap_or(0);
        if !(0..=196_608).contains(&cpu) {
            return Err(err(format!(
                "Invalid '{}': must be between 0 and 196608 CPU units.",
                at("cpu")
            )));
        }
        sum_cpu += i64::from(cpu);
        for (field, v) in [
            ("memory", c.memory),
            ("memoryReservation", c.memory_reservation),
        ] {
            if let Some(v) = v {
                if v < MIN_CONTAINER_MEMORY_MIB {
                    return Err(err(format!(
                        "Invalid '{}': the minimum is {MIN_CONTAINER_MEMORY_MIB} MiB, found {v}.",
                        at(field)
                    )));
                }
            }
        }
        match (c.memory, c.memory_reservation) {
            (None, None) if task_memory.is_none() => {
                return Err(err(format!(
                    "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
                )))
            }
            (Some(m), Some(r)) if m < r => {
                return Err(err(format!(
                    "Invalid setting for container '{name}': 'memory' ({m}) must be greater than or equal to 'memoryReservation' ({r})."
                )))
            }
            _ => {}
        }
        let reserve = c.memory_reservation.or(c.memory).unwrap_or(0);
        sum_mem += i64::from(reserve);
        if let (Some(tm), Some(m)) = (task_memory, c.memory) {
            if i64::from(m) > i64::from(tm) {
                return Err(err(format!(
                    "Invalid '{}': the container memory ({m}) is greater than the task memory ({tm}).",
                    at("memory")
                )));
            }
        }
        if c.essential.unwrap_or(true) {
            essential += 1;
        }

        let mut out = c.clone();
        out.cpu = Some(cpu);
        out.essential = Some(c.essential.unwrap_or(true));
        out.environment.get_or_insert_with(Vec::new);
        out.mount_points.get_or_insert_with(Vec::new);
        out.volumes_from.get_or_insert_with(Vec::new);
        out.system_controls.get_or_insert_with(Vec::new);
        let mut mappings = c.port_mappings.clone().unwrap_or_default();
        if mode == NetworkMode::None && !mappings.is_empty() {
            return Err(err(format!(
                "Invalid '{}': port mappings are not allowed when networkMode is 'none'.",
                at("portMappings")
            )));
        }
        for pm in &mut mappings {
            let proto = *pm.protocol.get_or_insert(TransportProtocol::Tcp);
            match (pm.container_port, pm.container_port_range.as_deref()) {
                (Some(p), _) if !(1..=65535).contains(&p) => {
                    return Err(err(format!(
                        "Invalid '{}': containerPort {p} is not between 1 and 65535.",
                        at("portMappings.containerPort")
                    )))
                }
                (Some(_), Some(_)) => {
                    return Err(err(format!(
                        "Invalid '{}': set containerPort or containerPortRange, not both.",
                        at("portMappings")
                    )))
                }
                (None, None) => {
                    return Err(err(format!(
                        "Invalid '{}': containerPort or containerPortRange is required.",
                        at("portMappings")
                    )))
                }
                (None, Some(r)) => {
                    if mode == NetworkMode::Host {
                        return Err(err(format!(
                            "Invalid '{}': containerPortRange is not supported in host network mode.",
                            at("portMappings.containerPortRange")
                        )));
                    }
                    let ok = r.split_once('-').is_some_and(|(a, b)| {
                        matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a >= 1 && a < b)
                    });
                    if !ok || pm.host_port.is_some() {
                        return Err(err(format!(
                            "Invalid '{}': expected 'first-last' with 1 <= first < last <= 65535, and no hostPort.",
                            at("portMappings.containerPortRange")
                        )));
                    }
                }
                (Some(_), None) => {}
            }
            if let Some(h) = pm.host_port {
                if !(0..=65535).contains(&h) {
                    return Err(err(format!(
                        "Invalid '{}': hostPort {h} is not between 0 and 65535.",
                        at("portMappings.hostPort")
                    )));
                }
            }
            if let Some(cp) = pm.container_port {
                if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host) {
                    match pm.host_port {
                        Some(h) if h != cp && h != 0 => {
                            return Err(err(format!(
                                "Invalid '{}': when networkMode={}, the host ports and container ports in port mappings must match.",
                                at("portMappings.hostPort"),
                                mode.as_str()
                            )))
                        }
                        _ => pm.host_port = Some(cp),
                    }
                }
            }
            if let Some(h) = pm.host_port.filter(|&h| h != 0) {
                if !static_ports.insert((h, proto)) {
                    return Err(err(format!(
                        "Invalid '{}': host port {h}/{} is used more than once in the task definition.",
                        at("portMappings.hostPort"),
                        proto.as_str()
                    )));
                }
            }
        }
        if c.port_mappings.is_some() || !mappings.is_empty() {
            out.port_mappings = Some(mappings);
        } else {
            out.port_mappings = Some(Vec::new());
        }
        if let Some(links) = &c.links {
            if mode != NetworkMode::Bridge && !links.is_empty() {
                return Err(err(format!(
                    "Invalid '{}': links are only supported in bridge network mode.",
                    at("links")
                )));
            }
            for l in links {
                let target = l.split(':').next().unwrap_or("");
                if !names.contains_key(target) || target == name {
                    return Err(err(format!(
                        "Invalid '{}': no other container is named '{target}'.",
                        at("links")
                    )));
                }
            }
        }
        for vf in c.volumes_from.iter().flatten() {
            let src = vf.source_container.as_deref().unwrap_or("");
            if !names.contains_key(src) || src == name {
                return Err(err(format!(
                    "Invalid '{}': no other container is named '{src}'.",
                    at("volumesFrom.sourceContainer")
                )));
            }
        }
        for mp in c.mount_points.iter().flatten() {
            let src = mp.source_volume.as_deref().unwrap_or("");
            if !volume_names.contains(src) {
                return Err(err(format!(
                    "Invalid '{}': '{src}' is not the name of a volume in 'volumes'.",
                    at("mountPoints.sourceVolume")
                )));
            }
            if mp.container_path.as_deref().unwrap_or("").is_empty() {
                return Err(err(format!(
                    "Invalid '{}': containerPath is required.",
                    at("mountPoints.containerPath")
                )));
            }
        }
        for dep in c.depends_on.iter().flatten() {
            let target = dep.container_name.as_str();
            let Some(t) = names.get(target).filter(|_| target != name) else {
                return Err(err(format!(
                    "Invalid '{}': no other container is named '{target}'.",
                    at("dependsOn.containerName")
                )));
            };
            match dep.condition {
                ContainerCondition::Complete | ContainerCondition::Success if t.essential.unwrap_or(true) => {
                    return Err(err(format!(
                        "Invalid '{}': the {} condition cannot target the essential container '{target}'.",
                        at("dependsOn.condition"),
                        dep.condition.as_str()
                    )))
                }
                ContainerCondition::Healthy if t.health_check.is_none() => {
                    return Err(err(format!(
                        "Invalid '{}': the HEALTHY condition needs a healthCheck on container '{target}'.",
                        at("dependsOn.condition")
                    )))
                }
                _ => {}
            }
        }
        if let Some(hc) = &c.health_check {
            if hc.command.is_empty() {
                return Err(err(format!(
                    "Invalid '{}': the command is empty.",
                    at("healthCheck.command")
                )));
            }
            for (field, v, lo, hi) in [
                ("interval", hc.interval, 5, 300),
                ("timeout", hc.timeout, 2, 60),
                ("retries", hc.retries, 1, 10),
                ("startPeriod", hc.start_period, 0, 300),
            ] {
                if let Some(v) = v.filter(|v| !(lo..=hi).contains(v)) {
                    return Err(err(format!(
                        "Invalid '{}': {v} is not between {lo} and {hi}.",
                        at(&format!("healthCheck.{field}"))
                    )));
                }
            }
            let mut hc = hc.clone();
            hc.interval.get_or_insert(30);
            hc.timeout.get_or_insert(5);
            hc.retries.get_or_insert(3);
            out.health_check = Some(hc);
        }
        if let Some(t) = c.stop_timeout {
            let max = if fargate { 120 } else { i32::MAX };
            if !(0..=max).contains(&t) {
                return Err(err(format!(
                    "Invalid '{}': {t} is not between 0 and {max} seconds.",
                    at("stopTimeout")
                )));
            }
        }
        if let Some(t) = c.start_timeout.filter(|t| *t < 0) {
            return Err(err(format!(
                "Invalid '{}': {t} is negative.",
                at("startTimeout")
            )));
        }
        for u in c.ulimits.iter().flatten() {
            if u.soft_limit > u.hard_limit {
                return Err(err(format!(
                    "Invalid '{}': the soft limit of '{}' exceeds its hard limit.",
                    at("ulimits"),
                    u.name.as_str()
                )));
            }
        }
        for r in c.resource_requirements.iter().flatten() {
            if r.r#type == crate::model::ResourceType::Gpu {
                let value = r.value.as_deref().unwrap_or_default();
                match value.trim().parse::<u32>() {
                    Ok(n) if (1..=64).contains(&n) => {}
                    _ => {
                        return Err(err(format!(
                        "Invalid '{}': a GPU count is an integer from 1 to 64, found {value:?}.",
                        at("resourceRequirements.value"),
                    )))
                    }
                }
            }
        }
        for e in c.environment.iter().flatten() {
            if e.name.as_deref().unwrap_or("").is_empty() {
                return Err(err(format!(
                    "Invalid '{}': every variable needs a name.",
                    at("environment")
                )));
            }
        }
        if fargate && c.privileged == Some(true) {
            return Err(err(format!(
                "Invalid '{}': privileged containers are not supported on Fargate.",
                at("privileged")
            )));
        }
        out_containers.push(out);
    }
    if essential == 0 {
        return Err(err("Invalid 'containerDefinitions': a task definition must have at least one essential container."));
    }
    if let Some(tm) = task_memory {
        if sum_mem > i64::from(tm) {
            return Err(err(format!(
                "Invalid 'memory': the containers reserve {sum_mem} MiB, more than the task memory of {tm} MiB."
            )));
        }
    }
    if let Some(tc) = task_cpu {
        if sum_cpu > i64::from(tc) {
            return Err(err(format!(
                "Invalid 'cpu': the containers use {sum_cpu} CPU units, more than the task cpu of {tc}."
            )));
        }
    }
    check_dependency_cycles(containers)?;
    let constraints = req.placement_constraints.clone().unwrap_or_default();
    if constraints.len() > 10 {
        return Err(err(
            "Invalid 'placementConstraints': at most 10 are allowed.",
        ));
    }
    for pc in &constraints {
        if pc.expression.as_deref().unwrap_or("").trim().is_empty() {
            return Err(err("Invalid 'placementConstraints.expression': a memberOf constraint needs an expression."));
        }
    }

    let mut compatibilities = vec![Compatibility::Ec2];
    if mode != NetworkMode::Awsvpc {
        compatibilities.push(Compatibility::External);
    }
    let fargate_ok = mode == NetworkMode::Awsvpc
        && matches!((task_cpu, task_memory), (Some(c), Some(m)) if fargate_memory_allowed(c, m))
        && containers.iter().all(|c| c.privileged != Some(true));
    if fargate_ok {
        compatibilities.push(Compatibility::Fargate);
    }
    for need in &compat {
        if !compatibilities.contains(need) && *need != Compatibility::ManagedInstances {
            return Err(err(format!(
                "Invalid 'requiresCompatibilities': the task definition is not compatible with {}.",
                need.as_str()
            )));
        }
    }

    Ok(TaskDefinition {
        requires_attributes: Some(required_attributes(req)),
        family: Some(req.family.clone()),
        container_definitions: Some(out_containers),
        task_role_arn: req.task_role_arn.clone(),
        execution_role_arn: req.execution_role_arn.clone(),
        network_mode: req.network_mode,
        volumes: Some(req.volumes.clone().unwrap_or_default()),
        status: Some(TaskDefinitionStatus::Active),
        placement_constraints: Some(constraints),
        compatibilities: Some(compatibilities),
        runtime_platform: req.runtime_platform.clone(),
        requires_compatibilities: req.requires_compatibilities.clone(),
        cpu: task_cpu.map(|c| c.to_string()),
        memory: task_memory.map(|m| m.to_string()),
        inference_accelerators: req.inference_accelerators.clone(),
        pid_mode: req.pid_mode,
        ipc_mode: req.ipc_mode,
        proxy_configuration: req.proxy_configuration.clone(),
        ephemeral_storage: req.ephemeral_storage.clone(),
        enable_fault_injection: req.enable_fault_injection,
        ..TaskDefinition::default()
    })
}

/// The awslogs driver's options, as Docker checks them: a group, and a `mode` with its
/// `max-buffer-size`. (gantry's agent buffers in the container's log file, so neither mode
/// drops a line nor makes the container wait; the options are kept for the ECS shape.)
fn check_awslogs(container: &str, l: &LogConfiguration) -> Result<(), ApiError> {
    if l.log_driver != LogDriver::Awslogs {
        return Ok(());
    }
    let opts = l.options.clone().unwrap_or_default();
    let bad = |what: String| Err(ApiError::client(format!("Container '{container}': {what}")));
    if opts.get("awslogs-group").is_none_or(|g| g.is_empty()) {
        return bad("the awslogs log driver needs the option awslogs-group.".into());
    }
    let mode = opts.get("mode").map(String::as_str);
    if let Some(m) = mode.filter(|m| !matches!(*m, "blocking" | "non-blocking")) {
        return bad(format!(
            "the log option mode must be blocking or non-blocking, not {m:?}."
        ));
    }
    if let Some(size) = opts.get("max-buffer-size") {
        let digits = size.trim_end_matches(|c: char| "kKmMgGbB".contains(c));
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return bad(format!(
                "the log option max-buffer-size must be a size such as 25m, not {size:?}."
            ));
        }
        if mode != Some("non-blocking") {
            return bad(
                "the log option max-buffer-size applies only with mode non-blocking.".into(),
            );
        }
    }
    Ok(())
}

/// The capabilities an instance must advertise to run the task definition, as ECS derives them.
pub fn required_attributes(req: &RegisterTaskDefinitionRequest) -> Vec<Attribute> {
    let mut names = BTreeSet::new();
    for c in &req.container_definitions {
        if let Some(l) = &c.log_configuration {
            names.insert(format!(
                "com.amazonaws.ecs.capability.logging-driver.{}",
                l.log_driver.as_str()
            ));
        }
        if c.health_check.is_some() {
            names.insert("ecs.capability.container-health-check".to_string());
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            names.insert("ecs.capability.container-ordering".to_string());
        }
    }
    for v in req.volumes.iter().flatten() {
        if let Some(d) = &v.docker_volume_configuration {
            names.insert(format!(
                "ecs.capability.docker-plugin.{}",
                d.driver.as_deref().unwrap_or("local")
            ));
        }
    }
    names
        .into_iter()
        .map(|name| Attribute {
            name,
            ..Attribute::default()
        })
        .collect()
}

/// `dependsOn` must form a DAG: start order is a topological order and stop order its reverse.
fn check_dependency_cycles(containers: &[ContainerDefinition]) -> Result<(), ApiError> {
    let index: BTreeMap<&str, usize> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_deref().unwrap_or(""), i))
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; containers.len()];
    fn visit(
        i: usize,
        cs: &[ContainerDefinition],
        index: &BTreeMap<&str, usize>,
        mark: &mut [u8],
    ) -> Result<(), ApiError> {
        mark[i] = 1;
        for d in cs[i].depends_on.iter().flatten() {
            let Some(&j) = index.get(d.container_name.as_str()) else {
                continue;
            };
            match mark[j] {
                1 => {
                    return Err(err(format!(
                        "Invalid 'containerDefinitions[{}].dependsOn': the dependency on '{}' forms a cycle.",
                        cs[i].name.as_deref().unwrap_or(""),
                        d.container_name
                    )))
                }
                0 => visit(j, cs, index, mark)?,
                _ => {}
            }
        }
        mark[i] = 2;
        Ok(())
    }
    for i in 0..containers.len() {
        if mark[i] == 0 {
            visit(i, containers, &index, &mut mark)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{decode, ErrorCode};

    fn reg(json: &str) -> Result<TaskDefinition, ApiError> {
        build(&decode::<RegisterTaskDefinitionRequest>(json.as_bytes())?)
    }

    fn fails_naming(json: &str, field: &str) {
        let e = reg(json).expect_err(json);
        assert!(
            matches!(
                e.code,
                ErrorCode::ClientException | ErrorCode::InvalidParameterException
            ),
            "{e}"
        );
        assert!(e.message.contains(field), "{field} not in {}", e.message);
    }

    #[test]
    fn the_seed_web_server_normalises() {
        let td = reg(r#"{"family": "webserver",
            "containerDefinitions": [{"name": "web", "image": "nginx", "memory": "100", "cpu": "99"}],
            "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "memory": "0.5GB", "cpu": "0.25 vCPU"}"#)
        .unwrap();
        assert_eq!(td.cpu.as_deref(), Some("256"));
        assert_eq!(td.memory.as_deref(), Some("512"));
        let c = &td.container_definitions.as_ref().unwrap()[0];
        assert_eq!(
            (c.cpu, c.memory, c.essential),
            (Some(99), Some(100), Some(true))
        );
        assert_eq!(
            td.compatibilities.unwrap(),
            vec![Compatibility::Ec2, Compatibility::Fargate]
        );
    }

    #[test]
    fn task_sizes_parse() {
        assert_eq!(parse_task_cpu("1 vCPU"), Some(1024));
        assert_eq!(parse_task_cpu("0.5vcpu"), Some(512));
        assert_eq!(parse_task_cpu("abc"), None);
        assert_eq!(parse_task_memory("1GB"), Some(1024));
        assert_eq!(parse_task_memory("2 gb"), Some(2048));
        assert_eq!(parse_task_memory("-1"), None);
        assert!(fargate_memory_allowed(256, 512));
        assert!(!fargate_memory_allowed(256, 4096));
        assert!(fargate_memory_allowed(8192, 20 * 1024));
        assert!(!fargate_memory_allowed(8192, 18 * 1024));
    }

    #[test]
    fn awslogs_options_are_checked_as_docker_checks_them() {
        let with = |opts: &str| {
            format!(
                r#"{{"family":"f","containerDefinitions":[{{"name":"a","image":"x","memory":10,"logConfiguration":{{"logDriver":"awslogs","options":{{{opts}}}}}}}]}}"#
            )
        };
        assert!(reg(&with(
            r#""awslogs-group":"/g","mode":"non-blocking","max-buffer-size":"4m""#
        ))
        .is_ok());
        assert!(reg(&with(r#""awslogs-group":"/g","mode":"blocking""#)).is_ok());
        fails_naming(&with(r#""awslogs-region":"us-east-1""#), "awslogs-group");
        fails_naming(&with(r#""awslogs-group":"/g","mode":"lossy""#), "mode");
        fails_naming(
            &with(r#""awslogs-group":"/g","mode":"non-blocking","max-buffer-size":"lots""#),
            "max-buffer-size",
        );
        fails_naming(
            &with(r#""awslogs-group":"/g","max-buffer-size":"4m""#),
            "non-blocking",
        );
    }

    #[test]
    fn violations_name_the_field() {
        fails_naming(
            r#"{"family":"bad name","containerDefinitions":[{"name":"a","image":"x","memory":10}]}"#,
            "family",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[]}"#,
            "containerDefinitions",
        );
        let eleven: Vec<String> = (0..11)
            .map(|i| format!(r#"{{"name":"c{i}","image":"x","memory":10}}"#))
            .collect();
        fails_naming(
            &format!(
                r#"{{"family":"f","containerDefinitions":[{}]}}"#,
                eleven.join(",")
            ),
            "containerDefinitions",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10},{"name":"a","image":"x","memory":10}]}"#,
            "name",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x"}]}"#,
            "memory",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"memoryReservation":20}]}"#,
            "memoryReservation",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":4}]}"#,
            "memory",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","memory":10}]}"#,
            "image",
        );
        fails_naming(
            r#"{"family":"f","networkMode":"bogus","containerDefinitions":[{"name":"a","image":"x","memory":10}]}"#,
            "networkMode",
        );
        fails_naming(
            r#"{"family":"f","networkMode":"awsvpc","containerDefinitions":[{"name":"a","image":"x","memory":10,"portMappings":[{"containerPort":80,"hostPort":81}]}]}"#,
            "hostPort",
        );
        fails_naming(
            r#"{"family":"f","networkMode":"none","containerDefinitions":[{"name":"a","image":"x","memory":10,"portMappings":[{"containerPort":80}]}]}"#,
            "portMappings",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"portMappings":[{"containerPort":80,"hostPort":8080},{"containerPort":81,"hostPort":8080}]}]}"#,
            "hostPort",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"dependsOn":[{"containerName":"b","condition":"START"}]}]}"#,
            "dependsOn",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"dependsOn":[{"containerName":"b","condition":"START"}]},{"name":"b","image":"x","memory":10,"dependsOn":[{"containerName":"a","condition":"START"}]}]}"#,
            "cycle",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"dependsOn":[{"containerName":"b","condition":"SUCCESS"}]},{"name":"b","image":"x","memory":10}]}"#,
            "dependsOn.condition",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"dependsOn":[{"containerName":"b","condition":"HEALTHY"}]},{"name":"b","image":"x","memory":10,"essential":false}]}"#,
            "healthCheck",
        );
        fails_naming(
            r#"{"family":"f","placementConstraints":[{"type":"distinctInstance"}],"containerDefinitions":[{"name":"a","image":"x","memory":10}]}"#,
            "distinctInstance",
        );
        fails_naming(
            r#"{"family":"f","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512","containerDefinitions":[{"name":"a","image":"x"}]}"#,
            "networkMode",
        );
        fails_naming(
            r#"{"family":"f","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","memory":"512","containerDefinitions":[{"name":"a","image":"x"}]}"#,
            "cpu",
        );
        fails_naming(
            r#"{"family":"f","requiresCompatibilities":["FARGATE"],"networkMode":"awsvpc","cpu":"256","memory":"4096","containerDefinitions":[{"name":"a","image":"x"}]}"#,
            "cpu",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"essential":false}]}"#,
            "essential",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"mountPoints":[{"sourceVolume":"v","containerPath":"/d"}]}]}"#,
            "sourceVolume",
        );
        fails_naming(
            r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"healthCheck":{"command":["CMD","true"],"interval":1}}]}"#,
            "interval",
        );
        fails_naming(
            r#"{"family":"f","memory":"512","containerDefinitions":[{"name":"a","image":"x","memory":1024}]}"#,
            "memory",
        );
        fails_naming(
            r#"{"family":"f","tags":[{"key":"aws:x","value":"1"}],"containerDefinitions":[{"name":"a","image":"x","memory":10}]}"#,
            "aws:",
        );
    }

    #[test]
    fn a_gpu_requirement_needs_a_count() {
        // The model no longer marks `value` required (a GPU may be shared instead), but a GPU
        // requirement without a count is still refused, naming the field.
        for value in [r#""#, r#","value":"0""#, r#","value":"two""#] {
            fails_naming(
                &format!(
                    r#"{{"family":"f","containerDefinitions":[{{"name":"a","image":"x","memory":10,"resourceRequirements":[{{"type":"GPU"{value}}}]}}]}}"#
                ),
                "resourceRequirements.value",
            );
        }
        let td = reg(r#"{"family":"f","containerDefinitions":[{"name":"a","image":"x","memory":10,"resourceRequirements":[{"type":"GPU","value":"2"}]}]}"#).unwrap();
        let r = &td.container_definitions.unwrap()[0]
            .resource_requirements
            .clone()
            .unwrap()[0];
        assert_eq!(r.value.as_deref(), Some("2"));
    }

    #[test]
    fn host_mode_fills_host_ports_and_defaults_apply() {
        let td = reg(r#"{"family":"f","networkMode":"host","containerDefinitions":[{"name":"a","image":"x","memory":10,"portMappings":[{"containerPort":80}]}]}"#).unwrap();
        let c = &td.container_definitions.unwrap()[0];
        let pm = &c.port_mappings.as_ref().unwrap()[0];
        assert_eq!(pm.host_port, Some(80));
        assert_eq!(pm.protocol, Some(TransportProtocol::Tcp));
        assert_eq!(c.cpu, Some(0));
        assert_eq!(
            td.compatibilities.unwrap(),
            vec![Compatibility::Ec2, Compatibility::External]
        );
    }

    #[test]
    fn valid_dependencies_pass() {
        reg(r#"{"family":"f","containerDefinitions":[
            {"name":"a","image":"x","memory":10,"dependsOn":[{"containerName":"b","condition":"HEALTHY"},{"containerName":"c","condition":"SUCCESS"}]},
            {"name":"b","image":"x","memory":10,"healthCheck":{"command":["CMD-SHELL","true"]}},
            {"name":"c","image":"x","memory":10,"essential":false}]}"#)
        .unwrap();
    }
}
