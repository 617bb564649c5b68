//! What each ECS operation asks the authorization hook for: its IAM action (`ecs:<Operation>`,
//! as ECS names them) and the ARNs it touches, following the ECS service authorization
//! reference (List*, Describe* of task definitions and Register* name `*`).

use crate::Server;
use gantry_api::model::*;

/// The ARNs an operation's input touches.
pub(crate) trait Resources {
    fn resources(&self, s: &Names<'_>) -> Vec<String>;
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
    RegisterTaskDefinitionRequest,
    DescribeTaskDefinitionRequest,
    ListTaskDefinitionsRequest,
    ListTaskDefinitionFamiliesRequest,
    DeregisterTaskDefinitionRequest,
    PutAccountSettingRequest,
    PutAccountSettingDefaultRequest,
    DeleteAccountSettingRequest,
    ListAccountSettingsRequest,
    DescribeCapacityProvidersRequest,
    ListServicesRequest,
);

macro_rules! on_cluster {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, n: &Names<'_>) -> Vec<String> {
                vec![n.cluster(self.cluster.as_deref())]
            }
        }
    )*};
}

on_cluster!(
    RegisterContainerInstanceRequest,
    DeregisterContainerInstanceRequest,
    DescribeContainerInstancesRequest,
    ListContainerInstancesRequest,
    PutAttributesRequest,
    DeleteAttributesRequest,
    ListAttributesRequest,
    ListTasksRequest,
    SubmitTaskStateChangeRequest,
    SubmitContainerStateChangeRequest,
);

macro_rules! on_named_cluster {
    ($($t:ty),* $(,)?) => {$(
        impl Resources for $t {
            fn resources(&self, n: &Names<'_>) -> Vec<String> {
                vec![n.cluster(Some(&self.cluster))]
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

on_resource_arn!(
    TagResourceRequest,
    UntagResourceRequest,
    ListTagsForResourceRequest
);

impl Resources for UpdateContainerInstancesStateRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        let c = self.cluster.as_deref();
        self.container_instances
            .iter()
            .map(|i| n.in_cluster("container-instance", c, i))
            .collect()
    }
}

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
        vec![n.task_definition(&self.task_definition)]
    }
}

impl Resources for StartTaskRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.task_definition(&self.task_definition)]
    }
}

impl Resources for StopTaskRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.in_cluster("task", self.cluster.as_deref(), &self.task)]
    }
}

impl Resources for DescribeTasksRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        let c = self.cluster.as_deref();
        self.tasks
            .iter()
            .map(|t| n.in_cluster("task", c, t))
            .collect()
    }
}

impl Resources for CreateServiceRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.in_cluster("service", self.cluster.as_deref(), &self.service_name)]
    }
}

impl Resources for UpdateServiceRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.in_cluster("service", self.cluster.as_deref(), &self.service)]
    }
}

impl Resources for DeleteServiceRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        vec![n.in_cluster("service", self.cluster.as_deref(), &self.service)]
    }
}

impl Resources for DescribeServicesRequest {
    fn resources(&self, n: &Names<'_>) -> Vec<String> {
        let c = self.cluster.as_deref();
        self.services
            .iter()
            .map(|s| n.in_cluster("service", c, s))
            .collect()
    }
}
