//! What each ECS operation asks the authorization hook for: its IAM action (`ecs:<Operation>`,
//! as ECS names them), the ARNs it touches and the condition keys it supplies, following the
//! ECS service authorization reference (List* and DescribeTaskDefinition name `*`;
//! RegisterTaskDefinition the revision it creates; RunTask the revision it runs, with the
//! cluster as `ecs:cluster`; operations in a cluster bring `ecs:cluster`; tagging ones
//! `aws:RequestTag/<key>` and `aws:TagKeys`), and the roles it passes to tasks
//! (`iam:PassRole`).

use crate::Server;
use gantry_api::model::*;
use gantry_core::{Ask, Gate, ServiceError};

/// The service principal of ECS's tasks, which a passed role must trust.
pub(crate) const TASKS_PRINCIPAL: &str = "ecs-tasks.amazonaws.com";

/// What an operation's input asks the authorizer.
pub(crate) trait Resources {
    /// The ARNs it touches.
    fn resources(&self, s: &Names<'_>) -> Vec<String>;

    /// The condition keys it supplies.
    fn keys(&self, _: &Names<'_>) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }

    /// The IAM roles it hands to tasks.
    fn passed_roles(&self, _: &Names<'_>) -> Vec<String> {
        Vec::new()
    }

    /// The whole question: resources and keys.
    fn ask(&self, n: &Names<'_>) -> Ask {
        Ask {
            resources: self.resources(n),
            keys: self.keys(n),
        }
    }
}

/// `ecs:cluster`, the key of every operation in a cluster.
fn cluster_key(arn: String) -> Vec<(String, Vec<String>)> {
    vec![("ecs:cluster".to_string(), vec![arn])]
}

/// Adds the request-tag keys of `tags` to `keys`.
fn with_tags(
    mut keys: Vec<(String, Vec<String>)>,
    tags: Option<&[Tag]>,
) -> Vec<(String, Vec<String>)> {
    let pairs = tags
        .unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key.as_deref()?, t.value.as_deref().unwrap_or_default())));
    keys.extend(Ask::default().request_tags(pairs).keys);
    keys
}

/// The roles of a task override.
fn override_roles(o: Option<&TaskOverride>) -> Vec<String> {
    o.map(|o| {
        [&o.task_role_arn, &o.execution_role_arn]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    })
    .unwrap_or_default()
}

/// `iam:PassRole` for a role an operation hands to tasks: the caller may pass it, and the role
/// exists and trusts ECS's tasks.
pub(crate) fn pass_role(gate: &Gate<'_>, role: &str) -> Result<(), ServiceError> {
    // ECS takes a role's short name as well as its ARN.
    let full;
    let role = if role.starts_with("arn:") {
        role
    } else {
        full = format!("arn:aws:iam::{}:role/{role}", gate.principal().account);
        &full
    };
    let ask = Ask::on(vec![role.to_string()])
        .key("iam:PassedToService", vec![TASKS_PRINCIPAL.to_string()]);
    gate.authorize_ask("iam:PassRole", &ask, &gantry_core::NoTags)?;
    gate.role_trusts(role, TASKS_PRINCIPAL).map_err(|why| {
        gantry_api::ApiError::client(format!(
            "ECS was unable to assume the role '{role}' that was provided for this task. Please verify that the role being passed has the proper trust relationship and permissions and that your IAM user has permissions to pass this role. ({why})"
        ))
        .into()
    })
}

/// Builds full ARNs from what requests give (names, ids or ARNs).
pub(crate) struct Names<'a> {
    server: &'a Server,
}

impl<'a> Names<'a> {
    pub(crate) fn new(server: &'a Server) -> Self {
        Names { server }
    }

    fn prefix(&self) -> String {
        format!(
            "arn:aws:ecs:{}:{}",
            self.server.config.region, self.server.config.account_id
        )
    }

    fn cluster_name(&self, c: Option<&str>) -> String {
        let c = c.unwrap_or("default");
        c.rsplit_once(":cluster/").map_or(c, |(_, n)| n).to_string()
    }

    pub(crate) fn cluster(&self, c: Option<&str>) -> String {
        self.server.arns.cluster(&self.cluster_name(c))
    }

    /// `kind` is `task`, `service` or `container-instance`: ARNs of the form
    /// `<kind>/<cluster>/<id>`.
    fn in_cluster(&self, kind: &str, cluster: Option<&str>, ident: &str) -> String {
        if ident.starts_with("arn:") {
            return ident.to_string();
        }
        format!(
            "{}:{kind}/{}/{ident}",
            self.prefix(),
            self.cluster_name(cluster)
        )
    }

    fn task_definition(&self, ident: &str) -> String {
        if ident.starts_with("arn:") {
            return ident.to_string();
        }
        format!("{}:task-definition/{ident}", self.prefix())
    }

    /// The ARN of the revision a reference resolves to (`family` alone means its latest ACTIVE
    /// revision, as ECS authorizes RunTask on the revision it will run).
    fn resolved_task_definition(&self, ident: &str) -> String {
        let resolved = gantry_api::TaskDefRef::parse(&self.server.arns, ident)
            .ok()
            .filter(|r| r.revision.is_none())
            .and_then(|r| {
                self.server
                    .read(|st| {
                        crate::ops::resolve_task_definition(st, &r)
                            .and_then(|td| td.task_definition_arn)
                    })
                    .ok()
                    .flatten()
            });
        resolved.unwrap_or_else(|| self.task_definition(ident))
    }

    /// The ARN the next revision of `family` will have.
    fn next_revision(&self, family: &str) -> String {
        let next = self
            .server
            .read(|st| {
                st.families
                    .get(family)
                    .and_then(|f| f.revisions.keys().next_back().copied())
                    .unwrap_or(0)
            })
            .unwrap_or(0)
            + 1;
        format!("{}:task-definition/{family}:{next}", self.prefix())
    }

    /// The task and execution roles of the task definition `ident` names, if it exists.
    fn task_definition_roles(&self, ident: &str) -> Vec<String> {
        let Ok(r) = gantry_api::TaskDefRef::parse(&self.server.arns, ident) else {
            return Vec::new();
        };
        self.server
            .read(|st| {
                crate::ops::resolve_task_definition(st, &r)
                    .map(|td| {
                        [td.task_role_arn, td.execution_role_arn]
                            .into_iter()
                            .flatten()
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn capacity_provider(&self, ident: &str) -> String {
        if ident.starts_with("arn:") {
            return ident.to_string();
        }
        format!("{}:capacity-provider/{ident}", self.prefix())
    }
}

fn any() -> Vec<String> {
    vec!["*".to_string()]
}

macro_rules! everything {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, _: &Names<'_>) -> Vec<String> {
                any()
            }
        }
    )*};
}

everything!(
    ListClustersRequest,
    DescribeTaskDefinitionRequest,
    ListTaskDefinitionsRequest,
    ListTaskDefinitionFamiliesRequest,
    DeregisterTaskDefinitionRequest,
    PutAccountSettingRequest,
    PutAccountSettingDefaultRequest,
    DeleteAccountSettingRequest,
    ListAccountSettingsRequest,
    DescribeCapacityProvidersRequest,
);

macro_rules! on_cluster {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, n: &Names<'_>) -> Vec<String> {
                vec![n.cluster(self.cluster.as_deref())]
            }

            fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
                cluster_key(n.cluster(self.cluster.as_deref()))
            }
        }
    )*};
}

on_cluster!(
    RegisterContainerInstanceRequest,
    DeregisterContainerInstanceRequest,
    ListContainerInstancesRequest,
    ListAttributesRequest,
    SubmitTaskStateChangeRequest,
    SubmitContainerStateChangeRequest,
);

impl Resources for ListServicesRequest {
    fn resources(&self, _: &Names<'_>) -> Vec<String> {
        any()
    }

    fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
        cluster_key(n.cluster(self.cluster.as_deref()))
    }
}

/// ListTasks: the reference names the container instance (the filter, when given), and the
/// cluster as `ecs:cluster`.
impl Resources for ListTasksRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        match &self.container_instance {
            Some(i) => vec![n.in_cluster("container-instance", self.cluster.as_deref(), i)],
            None => any(),
        }
    }

    fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
        cluster_key(n.cluster(self.cluster.as_deref()))
    }
}

/// Attributes on container instances act on their targets; those on the cluster (no target)
/// on the cluster.
macro_rules! on_attribute_targets {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, n: &Names<'_>) -> Vec<String> {
                let c = self.cluster.as_deref();
                let mut out: Vec<String> = self
                    .attributes
                    .iter()
                    .map(|a| match &a.target_id {
                        Some(id) => n.in_cluster("container-instance", c, id),
                        None => n.cluster(c),
                    })
                    .collect();
                out.dedup();
                if out.is_empty() {
                    out.push(n.cluster(c));
                }
                out
            }

            fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
                cluster_key(n.cluster(self.cluster.as_deref()))
            }
        }
    )*};
}

on_attribute_targets!(PutAttributesRequest, DeleteAttributesRequest);

macro_rules! on_named_cluster {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, n: &Names<'_>) -> Vec<String> {
                vec![n.cluster(Some(&self.cluster))]
            }

            fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
                cluster_key(n.cluster(Some(&self.cluster)))
            }
        }
    )*};
}

on_named_cluster!(
    UpdateClusterRequest,
    UpdateClusterSettingsRequest,
    DeleteClusterRequest,
    PutClusterCapacityProvidersRequest,
);

impl Resources for CreateClusterRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.cluster(self.cluster_name.as_deref())]
    }

    fn keys(&self, _: &Names<'_>) -> Vec<(String, Vec<String>)> {
        with_tags(Vec::new(), self.tags.as_deref())
    }
}

impl Resources for RegisterTaskDefinitionRequest {
    /// The revision it will create (the next one of the family).
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.next_revision(&self.family)]
    }

    fn keys(&self, _: &Names<'_>) -> Vec<(String, Vec<String>)> {
        with_tags(Vec::new(), self.tags.as_deref())
    }

    fn passed_roles(&self, _: &Names<'_>) -> Vec<String> {
        [&self.task_role_arn, &self.execution_role_arn]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

impl Resources for DescribeClustersRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        match self.clusters.as_deref() {
            Some(cs) if !cs.is_empty() => cs.iter().map(|c| n.cluster(Some(c))).collect(),
            _ => vec![n.cluster(None)],
        }
    }
}

impl Resources for DeleteTaskDefinitionsRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        self.task_definitions
            .iter()
            .map(|t| n.task_definition(t))
            .collect()
    }
}

macro_rules! on_resource_arn {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, _: &Names<'_>) -> Vec<String> {
                vec![self.resource_arn.clone()]
            }
        }
    )*};
}

impl Resources for TagResourceRequest {
    fn resources(&self, _: &Names<'_>) -> Vec<String> {
        vec![self.resource_arn.clone()]
    }

    fn keys(&self, _: &Names<'_>) -> Vec<(String, Vec<String>)> {
        with_tags(Vec::new(), Some(&self.tags))
    }
}

impl Resources for UntagResourceRequest {
    fn resources(&self, _: &Names<'_>) -> Vec<String> {
        vec![self.resource_arn.clone()]
    }

    fn keys(&self, _: &Names<'_>) -> Vec<(String, Vec<String>)> {
        vec![("aws:TagKeys".to_string(), self.tag_keys.clone())]
    }
}

on_resource_arn!(ListTagsForResourceRequest);

impl Resources for CreateCapacityProviderRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.capacity_provider(&self.name)]
    }
}

impl Resources for UpdateCapacityProviderRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.capacity_provider(&self.name)]
    }
}

impl Resources for DeleteCapacityProviderRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.capacity_provider(&self.capacity_provider)]
    }
}

impl Resources for RunTaskRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.resolved_task_definition(&self.task_definition)]
    }

    fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
        with_tags(
            cluster_key(n.cluster(self.cluster.as_deref())),
            self.tags.as_deref(),
        )
    }

    fn passed_roles(&self, _: &Names<'_>) -> Vec<String> {
        override_roles(self.overrides.as_ref())
    }
}

impl Resources for StartTaskRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.resolved_task_definition(&self.task_definition)]
    }

    fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
        with_tags(
            cluster_key(n.cluster(self.cluster.as_deref())),
            self.tags.as_deref(),
        )
    }

    fn passed_roles(&self, _: &Names<'_>) -> Vec<String> {
        override_roles(self.overrides.as_ref())
    }
}

/// Operations on resources of one cluster named by ids or ARNs (one field, or a list): the
/// resources, and the cluster as `ecs:cluster`.
macro_rules! in_cluster {
    ($($t:ty, $kind:literal, $field:ident, $many:ident;)*) => {$(
        impl Resources for $t {
            fn resources(&self, n: &Names<'_>) -> Vec<String> {
                let c = self.cluster.as_deref();
                in_cluster!(@items self, $field, $many)
                    .iter()
                    .map(|x| n.in_cluster($kind, c, x))
                    .collect()
            }

            fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
                cluster_key(n.cluster(self.cluster.as_deref()))
            }
        }
    )*};
    (@items $s:ident, $field:ident, one) => { std::slice::from_ref(&$s.$field) };
    (@items $s:ident, $field:ident, list) => { $s.$field };
}

in_cluster! {
    StopTaskRequest, "task", task, one;
    DescribeTasksRequest, "task", tasks, list;
    UpdateServiceRequest, "service", service, one;
    DeleteServiceRequest, "service", service, one;
    DescribeServicesRequest, "service", services, list;
    DescribeContainerInstancesRequest, "container-instance", container_instances, list;
    UpdateContainerInstancesStateRequest, "container-instance", container_instances, list;
}

impl Resources for CreateServiceRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.in_cluster("service", self.cluster.as_deref(), &self.service_name)]
    }

    fn keys(&self, n: &Names<'_>) -> Vec<(String, Vec<String>)> {
        let mut keys = cluster_key(n.cluster(self.cluster.as_deref()));
        if let Some(td) = &self.task_definition {
            keys.push((
                "ecs:task-definition".into(),
                vec![n.resolved_task_definition(td)],
            ));
        }
        with_tags(keys, self.tags.as_deref())
    }

    /// The service's role, and the roles of its task definition (the tasks it starts run
    /// with them).
    fn passed_roles(&self, n: &Names<'_>) -> Vec<String> {
        let mut roles: Vec<String> = self.role.iter().cloned().collect();
        if let Some(td) = &self.task_definition {
            roles.extend(n.task_definition_roles(td));
        }
        roles
    }
}
