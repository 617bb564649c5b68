//! The protocol between the control plane and its agents (`/agent/v1/*`, JSON over HTTP,
//! `Authorization: Bearer <join token>`).
//!
//! Level-triggered: a poll returns the whole set of tasks the instance must run, at a revision;
//! the agent converges on it and reports what it observes, in batches.

use crate::model::{
    Attribute, ContainerInstance, HealthStatus, NetworkBinding, Resource, Task, TaskDefinition,
    TaskStopCode, Timestamp, VersionInfo,
};
use serde::{Deserialize, Serialize};

pub const REGISTER_PATH: &str = "/agent/v1/register";
pub const POLL_PATH: &str = "/agent/v1/poll";
pub const REPORT_PATH: &str = "/agent/v1/report";
pub const LOGS_PATH: &str = "/agent/v1/logs";

/// Lines of a task's container for its `awslogs` log stream, stored as the task's execution
/// role. `source` and the byte range `[from, to)` of the container's log file make shipping
/// exactly-once: the server stores the range's events only when its stream holds the source up
/// to `from`, and answers how far it holds it. A batch without events asks just that.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipRequest {
    pub container_instance_arn: String,
    pub task_arn: String,
    /// The container's name in the task definition.
    pub container: String,
    pub group: String,
    pub stream: String,
    /// `awslogs-create-group`: create the group when it is missing.
    #[serde(default)]
    pub create_group: bool,
    /// The container's runtime id.
    pub source: String,
    pub from: u64,
    pub to: u64,
    /// (timestamp in milliseconds, message), oldest first.
    #[serde(default)]
    pub events: Vec<(i64, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipResponse {
    /// How far the stream holds `source`: where the next batch starts.
    pub stored_to: u64,
}

/// Registers a host, or re-registers it with the ARN it was given before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    /// CPU, MEMORY, PORTS, PORTS_UDP as in RegisterContainerInstance.
    pub total_resources: Vec<Resource>,
    pub version_info: VersionInfo,
    pub attributes: Vec<Attribute>,
    /// Shown as `ec2InstanceId`.
    pub hostname: String,
    /// What the host serves: `ec2` (a container instance), `fargate` (capacity for FARGATE
    /// tasks only, never listed as a container instance) or `both`.
    #[serde(default = "default_capacity")]
    pub capacity: String,
    /// The capacity provider this host stands for (`--capacity-provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_provider: Option<String>,
    /// The address ranges the networks on this host's Docker engine hold, with the gantry
    /// installation that made each (empty: not gantry's). The server keeps its awsvpc subnets
    /// off every range that is not its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_networks: Vec<EngineNetwork>,
}

/// A range a Docker network holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EngineNetwork {
    /// `172.17.0.0/16`
    pub cidr: String,
    /// The network's `gantry.installation` label, if it has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub installation: String,
}

fn default_capacity() -> String {
    "ec2".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    pub container_instance: ContainerInstance,
    /// The installation's id: the agent labels its containers and networks with it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub installation: String,
}

/// Long-poll: answered at once when the desired set is newer than `revision`, otherwise when it
/// changes or after `wait_ms`. Every poll is also the instance's heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    pub container_instance_arn: String,
    pub revision: u64,
    pub wait_ms: u64,
}

/// A task the instance must run (or stop: `task.desired_status == "STOPPED"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedTask {
    pub task: Task,
    pub task_definition: TaskDefinition,
    /// For an awsvpc task in security groups: the traffic its interface admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Firewall>,
    /// The containers' secrets, resolved by the server as the task's execution role, by
    /// container name. Sent to the agent only, never stored.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secrets: std::collections::BTreeMap<String, ContainerSecrets>,
    /// Why the secrets could not be resolved: the task fails to start with this reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_error: Option<String>,
    /// For a task with a `taskRoleArn`: a session of the role, for its containers (served by
    /// the agent's credentials endpoint). Renewed in later answers well before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<RoleCredentials>,
}

/// Temporary credentials of a role, as ECS's credentials endpoint serves them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleCredentials {
    pub role_arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: String,
    /// When they expire, in seconds since the Unix epoch.
    pub expiration: i64,
}

impl std::fmt::Debug for RoleCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the token: assignments are logged.
        f.debug_struct("RoleCredentials")
            .field("role_arn", &self.role_arn)
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// One container's resolved secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecrets {
    /// From `secrets`: environment variables (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<(String, String)>,
    /// From `logConfiguration.secretOptions`: log driver options (name, value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_options: Vec<(String, String)>,
    /// From `repositoryCredentials`: the user name and password to pull the image with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth: Option<RegistryAuth>,
}

/// Credentials for a private registry, from a Secrets Manager secret
/// (`{"username": ..., "password": ...}`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// What an awsvpc task's interface admits; everything else arriving from other tasks or
/// networks is dropped (replies to its own connections pass).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firewall {
    pub allow: Vec<Allow>,
    /// The awsvpc pool (a CIDR): subnets route to each other within it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pool: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allow {
    /// `tcp`, `udp` or `all`.
    pub protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    /// A CIDR (`10.213.0.5/32` for one task).
    pub source: String,
}

/// A security group, managed with `gantry security-group` (gantry's own API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroup {
    pub group_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub ingress: Vec<IngressRule>,
}

/// Traffic a group admits, besides its own members (always admitted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// `tcp`, `udp` or `all`.
    pub protocol: String,
    #[serde(default)]
    pub from_port: u16,
    #[serde(default = "max_port")]
    pub to_port: u16,
    /// Members of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_group: Option<String>,
    /// Or addresses in this CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
}

fn max_port() -> u16 {
    65535
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    pub revision: u64,
    /// Every task on the instance that the agent has not yet reported STOPPED.
    pub tasks: Vec<AssignedTask>,
    /// The container instance's tags (for the tasks' metadata, `taskWithTags`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_tags: Vec<crate::model::Tag>,
}

/// What the agent saw of one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerReport {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
}

/// What the agent saw of one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    pub task_arn: String,
    pub last_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<TaskStopCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRequest {
    pub container_instance_arn: String,
    pub tasks: Vec<TaskReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResponse {
    /// Reports the server did not apply (unknown task, or a state that would move backwards).
    pub ignored: Vec<String>,
}

/// The task lifecycle, in the only order it moves.
pub const TASK_STATES: [&str; 8] = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
];

/// ECS's eight task states, ordered as the lifecycle moves (and only forward): load-balancer
/// registration happens in ACTIVATING, draining in DEACTIVATING.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskState {
    Provisioning,
    Pending,
    Activating,
    Running,
    Deactivating,
    Stopping,
    Deprovisioning,
    Stopped,
}

impl TaskState {
    /// Every state, in lifecycle order.
    pub const ALL: [TaskState; 8] = [
        TaskState::Provisioning,
        TaskState::Pending,
        TaskState::Activating,
        TaskState::Running,
        TaskState::Deactivating,
        TaskState::Stopping,
        TaskState::Deprovisioning,
        TaskState::Stopped,
    ];

    /// The state ECS names `s` (`"RUNNING"`), if it is one.
    pub fn parse(s: &str) -> Option<TaskState> {
        TASK_STATES
            .iter()
            .position(|x| *x == s)
            .map(|i| Self::ALL[i])
    }

    /// ECS's name of the state.
    pub fn as_str(self) -> &'static str {
        TASK_STATES[self as usize]
    }
}

/// The position of a task state in the lifecycle (unknown states sort first).
pub fn task_state_rank(s: &str) -> usize {
    TaskState::parse(s).map_or(0, |t| t as usize)
}
