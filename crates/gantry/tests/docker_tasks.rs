//! Tasks on real Docker: a real `gantry server`, a real `gantry agent`, real containers from an
//! image the test builds (FROM scratch + busybox-static). The tests run one at a time (a lock),
//! so timings on two cores stay sane; each uses its own server, agent and data directories.

use gantry_testkit::{
    docker, ensure_busybox_image, remove_labelled, temp_dir, wait_for, AgentProcess, GantryProcess,
    BUSYBOX_IMAGE,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const BIN: &str = env!("CARGO_BIN_EXE_gantry");
const AGENT_ARGS: &[&str] = &[
    "--tick",
    "100ms",
    "--stop-timeout",
    "2s",
    "--pull-behavior",
    "prefer-cached",
    "--cleanup-wait",
    "1h",
];

/// A server with one agent in the cluster `default`.
struct Env {
    server: GantryProcess,
    agent: AgentProcess,
    instance: String,
}

impl Env {
    async fn start(name: &str) -> Env {
        Self::start_with(name, &[], &[]).await
    }

    /// Extra `gantry server` and `gantry agent` arguments (later ones win).
    async fn start_with(name: &str, server_args: &[&str], agent_args: &[&str]) -> Env {
        ensure_busybox_image();
        let dir = temp_dir(name);
        let sargs = merge_flags(&["--agent-timeout", "3s"], server_args);
        let server = GantryProcess::start_with(BIN.as_ref(), &dir.join("server"), &sargs).await;
        let (status, v) = server.call("CreateCluster", "{}").await;
        assert_eq!(status, 200, "{v}");
        let aargs = merge_flags(AGENT_ARGS, agent_args);
        let (agent, instance) =
            AgentProcess::start_registered(BIN.as_ref(), &server, &dir.join("agent"), &aargs).await;
        Env {
            server,
            agent,
            instance,
        }
    }

    async fn call(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.server.call(op, &body.to_string()).await;
        assert_eq!(status, 200, "{op} {body}: {v}");
        v
    }

    async fn register(&self, td: Value) -> String {
        let v = self.call("RegisterTaskDefinition", td).await;
        v["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn run(&self, td: &str) -> String {
        let v = self.call("RunTask", json!({"taskDefinition": td})).await;
        assert_eq!(v["failures"], json!([]), "{v}");
        v["tasks"][0]["taskArn"].as_str().unwrap().to_string()
    }

    async fn describe(&self, task: &str) -> Value {
        let v = self.call("DescribeTasks", json!({"tasks": [task]})).await;
        v["tasks"][0].clone()
    }

    async fn wait_status(&self, task: &str, status: &str, timeout: Duration) -> Value {
        wait_for(&format!("{task} to be {status}"), timeout, || async {
            let t = self.describe(task).await;
            (t["lastStatus"] == status).then_some(t)
        })
        .await
    }
}

/// `--flag value` pairs of `base`, with those `extra` gives replaced.
fn merge_flags<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for pair in base.chunks(2) {
        if !extra.chunks(2).any(|e| e[0] == pair[0]) {
            out.extend_from_slice(pair);
        }
    }
    out.extend_from_slice(extra);
    out
}

impl Drop for Env {
    fn drop(&mut self) {
        // The agent first, and a moment for Docker to finish what it asked for: otherwise a
        // container may be created after the sweep below.
        self.agent.kill9();
        std::thread::sleep(std::time::Duration::from_millis(500));
        remove_containers_of(&self.instance);
    }
}

fn remove_containers_of(instance: &str) {
    // Pause containers go last (others share their namespace); `rm -f` handles that order.
    remove_labelled("gantry.container-instance", instance);
    // Subnet networks left unused (by this or an earlier, failed run) go too.
    let _ = std::process::Command::new("docker")
        .args(["network", "prune", "-f", "--filter", "label=gantry.subnet"])
        .output();
}

async fn lock() -> tokio::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().await
}

fn container(name: &str, command: &str) -> Value {
    json!({"name": name, "image": BUSYBOX_IMAGE, "memory": 32, "command": ["sh", "-c", command]})
}

fn containers_of(task: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=gantry.task={task}"),
    ])
    .split_whitespace()
    .map(String::from)
    .collect()
}

/// Docker's RFC 3339 time as nanoseconds since the epoch (to order container starts).
fn docker_time(container: &str, field: &str) -> i128 {
    let s = docker(&[
        "inspect",
        "-f",
        &format!("{{{{.State.{field}}}}}"),
        container,
    ]);
    let (date, rest) = s.split_once('T').unwrap();
    let d: Vec<i128> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let rest = rest.trim_end_matches('Z');
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, "0"));
    let t: Vec<i128> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let nanos: i128 = format!("{frac:0<9}")[..9].parse().unwrap();
    // Days are only compared within one run, so a simple day count is enough.
    let days = d[0] * 372 + d[1] * 31 + d[2];
    ((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1_000_000_000) + nanos
}

fn container_named(task: &Value, name: &str) -> Value {
    task["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn essential_exit_stops_the_task_and_reports_exit_codes() {
    let _l = lock().await;
    let env = Env::start("essential").await;
    let td = env
        .register(json!({"family": "essential", "containerDefinitions": [
            container("main", "sleep 1; exit 3"),
            {"name": "side", "image": BUSYBOX_IMAGE, "memory": 32, "essential": false, "command": ["sleep", "300"]},
        ]}))
        .await;
    let task = env.run(&td).await;
    let t = env
        .wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(t["desiredStatus"], "STOPPED");
    assert_eq!(container_named(&t, "main")["exitCode"], 3);
    assert_eq!(container_named(&t, "main")["lastStatus"], "STOPPED");
    // The non-essential one was stopped because the essential one exited (SIGKILL after 2 s).
    assert!(container_named(&t, "side")["exitCode"].is_i64(), "{t}");
    for k in [
        "createdAt",
        "startedAt",
        "stoppingAt",
        "stoppedAt",
        "pullStartedAt",
        "pullStoppedAt",
    ] {
        assert!(t[k].is_f64(), "{k} missing: {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depends_on_orders_container_starts() {
    let _l = lock().await;
    let env = Env::start("depends").await;
    let td = env
        .register(json!({"family": "ordered", "containerDefinitions": [
            {"name": "app", "image": BUSYBOX_IMAGE, "memory": 32, "command": ["sleep", "300"],
             "dependsOn": [{"containerName": "db", "condition": "START"}, {"containerName": "init", "condition": "SUCCESS"}]},
            {"name": "db", "image": BUSYBOX_IMAGE, "memory": 32, "command": ["sleep", "300"]},
            {"name": "init", "image": BUSYBOX_IMAGE, "memory": 32, "essential": false, "command": ["sh", "-c", "sleep 1; exit 0"]},
        ]}))
        .await;
    let task = env.run(&td).await;
    let t = env
        .wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    let id = |n: &str| {
        container_named(&t, n)["runtimeId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let app_start = docker_time(&id("app"), "StartedAt");
    assert!(
        app_start > docker_time(&id("init"), "FinishedAt"),
        "app started before init succeeded"
    );
    assert!(
        app_start > docker_time(&id("db"), "StartedAt"),
        "app started before db"
    );
    assert_eq!(container_named(&t, "init")["exitCode"], 0);
    // Stopping goes in reverse: app (which depends on db) stops before db.
    env.call("StopTask", json!({"task": task})).await;
    env.wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    assert!(
        docker_time(&id("app"), "FinishedAt") <= docker_time(&id("db"), "FinishedAt"),
        "db stopped before app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_dependency_waits_for_the_health_check() {
    let _l = lock().await;
    let env = Env::start("healthy").await;
    let td = env
        .register(json!({"family": "healthy", "containerDefinitions": [
            {"name": "web", "image": BUSYBOX_IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 2; touch /ready; sleep 300"],
             "healthCheck": {"command": ["CMD-SHELL", "test -f /ready"], "interval": 5, "timeout": 2, "retries": 3}},
            {"name": "app", "image": BUSYBOX_IMAGE, "memory": 32, "command": ["sleep", "300"],
             "dependsOn": [{"containerName": "web", "condition": "HEALTHY"}]},
        ]}))
        .await;
    let task = env.run(&td).await;
    let t = env
        .wait_status(&task, "RUNNING", Duration::from_secs(60))
        .await;
    let web = container_named(&t, "web");
    assert_eq!(web["healthStatus"], "HEALTHY", "{t}");
    let web_id = web["runtimeId"].as_str().unwrap();
    let app_id = container_named(&t, "app")["runtimeId"]
        .as_str()
        .unwrap()
        .to_string();
    let gap = docker_time(&app_id, "StartedAt") - docker_time(web_id, "StartedAt");
    assert!(
        gap >= 2_000_000_000,
        "app started {gap} ns after web, before web could be healthy"
    );
    let t = wait_for("task health HEALTHY", Duration::from_secs(10), || async {
        let t = env.describe(&task).await;
        (t["healthStatus"] == "HEALTHY").then_some(t)
    })
    .await;
    assert_eq!(t["lastStatus"], "RUNNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_timeout_is_sigterm_then_sigkill() {
    let _l = lock().await;
    let env = Env::start("stoptimeout").await;
    let td = env
        .register(json!({"family": "stopper", "containerDefinitions": [
            {"name": "graceful", "image": BUSYBOX_IMAGE, "memory": 32, "stopTimeout": 20,
             "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]},
            {"name": "stubborn", "image": BUSYBOX_IMAGE, "memory": 32, "stopTimeout": 3,
             "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]},
        ]}))
        .await;
    let task = env.run(&td).await;
    env.wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    let started = Instant::now();
    let v = env
        .call(
            "StopTask",
            json!({"task": task, "reason": "testing stopTimeout"}),
        )
        .await;
    assert_eq!(v["task"]["desiredStatus"], "STOPPED");
    assert_eq!(v["task"]["stopCode"], "UserInitiated");
    let t = env
        .wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "stopped after {took:?}, before the 3 s stopTimeout"
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?}: the 20 s timeout of the graceful container was waited out"
    );
    assert_eq!(
        container_named(&t, "graceful")["exitCode"],
        0,
        "SIGTERM was not delivered first"
    );
    assert_eq!(
        container_named(&t, "stubborn")["exitCode"],
        137,
        "not SIGKILLed"
    );
    assert_eq!(t["stoppedReason"], "testing stopTimeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_host_port_is_reachable_and_limits_are_applied() {
    let _l = lock().await;
    let env = Env::start("ports").await;
    let td = env
        .register(json!({"family": "web", "containerDefinitions": [{
            "name": "web", "image": BUSYBOX_IMAGE, "memory": 64, "memoryReservation": 32, "cpu": 256,
            "command": ["sh", "-c", "mkdir /www && echo hello-gantry > /www/index.html && exec httpd -f -p 8080 -h /www"],
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "dockerLabels": {"team": "qa"}
        }]}))
        .await;
    let task = env.run(&td).await;
    let t = env
        .wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    let c = container_named(&t, "web");
    let port = c["networkBindings"][0]["hostPort"].as_i64().unwrap();
    assert_eq!(c["networkBindings"][0]["containerPort"], 8080);
    assert!(port >= 1024, "{c}");
    let body = wait_for("httpd to answer", Duration::from_secs(10), || async {
        reqwest_get(&format!("http://127.0.0.1:{port}/index.html")).await
    })
    .await;
    assert_eq!(body.trim(), "hello-gantry");

    let id = c["runtimeId"].as_str().unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.Memory}}", id]),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.MemoryReservation}}", id]),
        (32 * 1024 * 1024).to_string()
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.CpuShares}}", id]),
        "256"
    );
    assert!(docker(&["inspect", "-f", "{{json .HostConfig.Ulimits}}", id]).contains("2048"));
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", id]);
    for want in [
        "\"team\":\"qa\"",
        "com.amazonaws.ecs.task-arn",
        "com.amazonaws.ecs.cluster",
        "gantry.container-instance",
    ] {
        assert!(labels.contains(want), "{want} not in {labels}");
    }
    // The instance's remaining resources account for the task.
    let v = env
        .call(
            "DescribeContainerInstances",
            json!({"containerInstances": [env.instance]}),
        )
        .await;
    let ci = &v["containerInstances"][0];
    assert_eq!(ci["runningTasksCount"], 1);
    assert_eq!(ci["agentConnected"], true);
    let reg = ci["registeredResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .unwrap()["integerValue"]
        .as_i64()
        .unwrap();
    let rem = ci["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .unwrap()["integerValue"]
        .as_i64()
        .unwrap();
    assert_eq!(
        reg - rem,
        32,
        "memoryReservation is what placement reserves"
    );
}

async fn reqwest_get(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agent_re_adopts_without_duplicates() {
    let _l = lock().await;
    let mut env = Env::start("adopt").await;
    let td = env
        .register(
            json!({"family": "adopt", "containerDefinitions": [container("main", "sleep 300")]}),
        )
        .await;
    let task = env.run(&td).await;
    env.wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    let before = containers_of(&task);
    assert_eq!(before.len(), 1);

    env.agent.kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        containers_of(&task),
        before,
        "the task's container must outlive its agent"
    );
    env.agent.restart();
    // Let the agent register and converge a few times.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        containers_of(&task),
        before,
        "a restarted agent started a duplicate"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &before[0]]),
        "true"
    );
    assert_eq!(env.describe(&task).await["lastStatus"], "RUNNING");
    // And it still manages the task.
    env.call("StopTask", json!({"task": task})).await;
    let t = env
        .wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    assert_eq!(t["stopCode"], "UserInitiated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_on_one_engine_leave_each_other_alone() {
    let _l = lock().await;
    let mut a = Env::start("two-a").await;
    let b = Env::start("two-b").await;
    let td_a = a
        .register(
            json!({"family": "mine", "containerDefinitions": [container("main", "sleep 300")]}),
        )
        .await;
    let td_b = b
        .register(
            json!({"family": "mine", "containerDefinitions": [container("main", "sleep 300")]}),
        )
        .await;
    let task_a = a.run(&td_a).await;
    let task_b = b.run(&td_b).await;
    a.wait_status(&task_a, "RUNNING", Duration::from_secs(30))
        .await;
    b.wait_status(&task_b, "RUNNING", Duration::from_secs(30))
        .await;
    // A restarted agent reaps containers of tasks its server does not know: only its own.
    a.agent.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b_container = containers_of(&task_b);
    assert_eq!(b_container.len(), 1);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &b_container[0]]),
        "true",
        "agent A touched B's container"
    );
    a.call("StopTask", json!({"task": task_a})).await;
    a.wait_status(&task_a, "STOPPED", Duration::from_secs(30))
        .await;
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &b_container[0]]),
        "true"
    );
    assert_eq!(b.describe(&task_b).await["lastStatus"], "RUNNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_the_task_to_start() {
    let _l = lock().await;
    let env = Env::start("missing").await;
    let td = env
        .register(json!({"family": "missing", "containerDefinitions": [
            {"name": "main", "image": "127.0.0.1:1/gantry/missing:1", "memory": 32}]}))
        .await;
    let task = env.run(&td).await;
    let t = env
        .wait_status(&task, "STOPPED", Duration::from_secs(60))
        .await;
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(reason.starts_with("CannotPullContainerError"), "{reason}");
    assert!(container_named(&t, "main")["reason"]
        .as_str()
        .unwrap()
        .contains("CannotPullContainerError"));
    assert!(containers_of(&task).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_outlive_the_server_and_state_catches_up() {
    let _l = lock().await;
    let mut env = Env::start("serverdown").await;
    let td = env.register(json!({"family": "outlive", "containerDefinitions": [container("main", "sleep 3; exit 7")]})).await;
    let task = env.run(&td).await;
    env.wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    env.server.kill9();
    // The container exits while the server is down; the agent holds the report.
    tokio::time::sleep(Duration::from_secs(5)).await;
    env.server.restart().await;
    let t = env
        .wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(container_named(&t, "main")["exitCode"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_refuses_what_does_not_fit() {
    let _l = lock().await;
    let env = Env::start("placement").await;
    // An instance registered through the public API has no agent: RunTask reports AGENT.
    let v = env
        .call(
            "RegisterContainerInstance",
            json!({"totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                                      {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]}),
        )
        .await;
    let bare = v["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v["containerInstance"]["agentConnected"], false);
    let huge = env
        .register(json!({"family": "huge", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE, "memory": 4_000_000}]}))
        .await;
    let v = env
        .call("RunTask", json!({"taskDefinition": huge, "count": 2}))
        .await;
    assert_eq!(v["tasks"], json!([]));
    let reasons: Vec<(String, String)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["arn"].as_str().unwrap_or_default().to_string(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&(bare.clone(), "AGENT".to_string())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&(env.instance.clone(), "RESOURCE:MEMORY".to_string())),
        "{reasons:?}"
    );
    // A static host port fits once per instance.
    let port = env
        .register(json!({"family": "port", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE, "memory": 16,
            "command": ["sleep", "300"], "portMappings": [{"containerPort": 80, "hostPort": 18080}]}]}))
        .await;
    let v = env
        .call(
            "RunTask",
            json!({"taskDefinition": port, "count": 2, "startedBy": "placement-test"}),
        )
        .await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1, "{v}");
    assert!(
        v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["reason"] == "RESOURCE:PORTS"),
        "{v}"
    );
    let listed = env
        .call("ListTasks", json!({"startedBy": "placement-test"}))
        .await;
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 1);
    // clientToken makes RunTask idempotent.
    let small = env
        .register(json!({"family": "small", "containerDefinitions": [container("m", "sleep 300")]}))
        .await;
    let first = env
        .call(
            "RunTask",
            json!({"taskDefinition": small, "clientToken": "tok-1"}),
        )
        .await;
    let again = env
        .call(
            "RunTask",
            json!({"taskDefinition": small, "clientToken": "tok-1"}),
        )
        .await;
    assert_eq!(first["tasks"][0]["taskArn"], again["tasks"][0]["taskArn"]);
    // Deregistering an instance with running tasks needs force.
    let (status, e) = env
        .server
        .call(
            "DeregisterContainerInstance",
            &json!({"containerInstance": env.instance}).to_string(),
        )
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_instances_cannot_be_deleted() {
    let _l = lock().await;
    let env = Env::start("delete-cluster").await;
    let (status, v) = env
        .server
        .call("DeleteCluster", r#"{"cluster":"default"}"#)
        .await;
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("ClusterContainsContainerInstancesException")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_and_linux_settings_reach_docker() {
    let _l = lock().await;
    let env = Env::start("volumes").await;
    let host_dir = temp_dir("bind");
    let td = env
        .register(json!({"family": "vols",
            "volumes": [{"name": "host", "host": {"sourcePath": host_dir.display().to_string()}},
                        {"name": "scratch"}],
            "containerDefinitions": [
                {"name": "writer", "image": BUSYBOX_IMAGE, "memory": 32, "essential": false,
                 "command": ["sh", "-c", "echo from-task > /host/out.txt && echo shared > /scratch/s.txt"],
                 "mountPoints": [{"sourceVolume": "host", "containerPath": "/host"}, {"sourceVolume": "scratch", "containerPath": "/scratch"}]},
                {"name": "reader", "image": BUSYBOX_IMAGE, "memory": 32,
                 "command": ["sh", "-c", "cat /scratch/s.txt > /host/read.txt; sleep 300"],
                 "dependsOn": [{"containerName": "writer", "condition": "SUCCESS"}],
                 "mountPoints": [{"sourceVolume": "host", "containerPath": "/host"}, {"sourceVolume": "scratch", "containerPath": "/scratch", "readOnly": true}],
                 "readonlyRootFilesystem": true,
                 "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]}},
                 "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "1m"}}}
            ]}))
        .await;
    let task = env.run(&td).await;
    let t = env
        .wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    wait_for(
        "the reader to copy the shared file",
        Duration::from_secs(10),
        || async {
            std::fs::read_to_string(host_dir.join("read.txt"))
                .ok()
                .filter(|s| s.trim() == "shared")
        },
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out.txt"))
            .unwrap()
            .trim(),
        "from-task"
    );
    let id = container_named(&t, "reader")["runtimeId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.Init}}", &id]),
        "true"
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", &id]),
        "true"
    );
    assert!(docker(&["inspect", "-f", "{{.HostConfig.CapAdd}}", &id]).contains("NET_ADMIN"));
    assert!(docker(&["inspect", "-f", "{{.HostConfig.CapDrop}}", &id]).contains("MKNOD"));
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", &id]),
        "json-file"
    );
    let mounts = docker(&["inspect", "-f", "{{json .Mounts}}", &id]);
    assert!(
        mounts.contains("\"Type\":\"volume\"") && mounts.contains("\"RW\":false"),
        "{mounts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_tasks_are_cleaned_up_and_expire() {
    let _l = lock().await;
    let env = Env::start_with(
        "cleanup",
        &["--task-retention", "2s", "--housekeeping-interval", "200ms"],
        &["--cleanup-wait", "1s"],
    )
    .await;
    let td = env
        .register(json!({"family": "brief", "containerDefinitions": [container("main", "exit 0")]}))
        .await;
    let task = env.run(&td).await;
    env.wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    wait_for(
        "the stopped task's container to be removed",
        Duration::from_secs(15),
        || async { containers_of(&task).is_empty().then_some(()) },
    )
    .await;
    wait_for(
        "the stopped task to expire",
        Duration::from_secs(15),
        || async {
            let v = env.call("DescribeTasks", json!({"tasks": [task]})).await;
            (v["failures"][0]["reason"] == "MISSING").then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awsvpc_tasks_get_their_own_interface() {
    let _l = lock().await;
    let env = Env::start("awsvpc").await;
    let td = env
        .register(json!({"family": "vpc", "networkMode": "awsvpc", "containerDefinitions": [
            {"name": "web", "image": BUSYBOX_IMAGE, "memory": 32, "portMappings": [{"containerPort": 8080}],
             "command": ["sh", "-c", "mkdir /www && echo hello-vpc > /www/index.html && exec httpd -f -p 8080 -h /www"]},
            {"name": "client", "image": BUSYBOX_IMAGE, "memory": 16, "essential": false,
             "command": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://localhost:8080/ && exit 0; sleep 0.3; done; exit 1"],
             "dependsOn": [{"containerName": "web", "condition": "START"}]}]}))
        .await;
    // networkConfiguration is required, and validated.
    let (status, e) = env
        .server
        .call("RunTask", &json!({"taskDefinition": td}).to_string())
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{e}"
    );
    let subnet = format!("subnet-t{}", std::process::id());
    let v = env
        .call("RunTask", json!({"taskDefinition": td, "networkConfiguration": {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": ["sg-1"]}}}))
        .await;
    let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let t = env
        .wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    let att = &t["attachments"][0];
    assert_eq!(att["type"], "ElasticNetworkInterface");
    let detail = |n: &str| {
        att["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap()["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(detail("subnetId"), subnet);
    let ip = detail("privateIPv4Address");
    assert!(ip.starts_with("10.213."), "{ip}");
    assert!(detail("networkInterfaceId").starts_with("eni-"));
    assert_eq!(
        container_named(&t, "web")["networkInterfaces"][0]["privateIpv4Address"],
        ip.as_str()
    );
    // The task's address answers from the host, on the container port (no host port involved).
    let body = wait_for(
        "the task's address to answer",
        Duration::from_secs(10),
        || async { reqwest_get(&format!("http://{ip}:8080/index.html")).await },
    )
    .await;
    assert_eq!(body.trim(), "hello-vpc");
    // Its containers share the namespace: the client reached the web server on localhost.
    let t = wait_for("the client to finish", Duration::from_secs(20), || async {
        let t = env.describe(&task).await;
        (container_named(&t, "client")["exitCode"].is_i64()).then_some(t)
    })
    .await;
    assert_eq!(
        container_named(&t, "client")["exitCode"],
        0,
        "the client could not reach localhost:8080"
    );
    // Both containers run in the pause container's namespace, on the subnet's network.
    let web_id = container_named(&t, "web")["runtimeId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        docker(&["inspect", "-f", "{{.HostConfig.NetworkMode}}", &web_id])
            .starts_with("container:")
    );
    // An EC2-launch task runs with the default runtime and shares the host's kernel (a FARGATE
    // task under gVisor does not: see the FARGATE test).
    assert_ne!(
        docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", &web_id]),
        "runsc"
    );
    assert_eq!(
        docker(&["exec", &web_id, "cat", "/proc/version"]).trim(),
        std::fs::read_to_string("/proc/version").unwrap().trim()
    );
    env.call("StopTask", json!({"task": task})).await;
    env.wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", &format!("gantry-{subnet}")])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fargate_tasks_run_without_container_instances_within_their_limits() {
    let _l = lock().await;
    ensure_busybox_image();
    let dir = temp_dir("fargate");
    let server = GantryProcess::start(BIN.as_ref(), &dir.join("server")).await;
    for c in [r#"{}"#, r#"{"clusterName":"empty"}"#] {
        assert_eq!(server.call("CreateCluster", c).await.0, 200);
    }
    let mut args = AGENT_ARGS.to_vec();
    args.extend(["--capacity", "fargate"]);
    let _agent = AgentProcess::start(BIN.as_ref(), &server, "default", &dir.join("agent"), &args);
    // Invalid Fargate sizes are refused at registration, as on ECS.
    let (status, e) = server
        .call("RegisterTaskDefinition", &json!({"family": "bad", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "4096", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE}]}).to_string())
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("ClientException")),
        "{e}"
    );
    let (_, v) = server
        .call("RegisterTaskDefinition", &json!({"family": "fg", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE, "command": ["sleep", "300"]}]}).to_string())
        .await;
    let td = v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet = format!("subnet-f{}", std::process::id());
    let body = json!({"cluster": "empty", "launchType": "FARGATE", "taskDefinition": td,
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": [subnet], "assignPublicIp": "ENABLED"}}});
    let task = wait_for("Fargate capacity", Duration::from_secs(30), || async {
        let (status, v) = server.call("RunTask", &body.to_string()).await;
        assert_eq!(status, 200, "{v}");
        v["tasks"][0]["taskArn"].as_str().map(String::from)
    })
    .await;
    let t = wait_for(
        "the Fargate task to run",
        Duration::from_secs(30),
        || async {
            let (_, d) = server
                .call(
                    "DescribeTasks",
                    &json!({"cluster": "empty", "tasks": [task]}).to_string(),
                )
                .await;
            let t = d["tasks"][0].clone();
            (t["lastStatus"] == "RUNNING").then_some(t)
        },
    )
    .await;
    assert_eq!(t["launchType"], "FARGATE");
    assert_eq!(t["capacityProviderName"], "FARGATE");
    assert_eq!(t["platformFamily"], "Linux");
    assert!(t["platformVersion"].is_string() && t["ephemeralStorage"]["sizeInGiB"] == 20);
    assert!(t.get("containerInstanceArn").is_none(), "{t}");
    // The host is capacity, not a container instance, in any cluster.
    for c in ["default", "empty"] {
        let (_, v) = server
            .call("ListContainerInstances", &json!({"cluster": c}).to_string())
            .await;
        assert_eq!(v["containerInstanceArns"], json!([]));
    }
    // The task's limits, on its cgroup, seen from the host.
    let id = task.rsplit('/').next().unwrap();
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let (mem, cpu) = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        (
            read(&format!("/sys/fs/cgroup/gantry/{id}/memory.max")),
            read(&format!("/sys/fs/cgroup/gantry/{id}/cpu.max"))
                .map(|s| s.split(' ').next().unwrap_or_default().to_string()),
        )
    } else {
        (
            read(&format!(
                "/sys/fs/cgroup/memory/gantry/{id}/memory.limit_in_bytes"
            )),
            read(&format!("/sys/fs/cgroup/cpu/gantry/{id}/cpu.cfs_quota_us")),
        )
    };
    assert_eq!(
        mem.as_deref(),
        Some("536870912"),
        "512 MiB on the task's cgroup"
    );
    assert_eq!(
        cpu.as_deref(),
        Some("25000"),
        "256 units: a quarter of a CPU"
    );
    let runtime = container_named(&t, "m")["runtimeId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", &runtime]),
        format!("/gantry/{id}")
    );
    // With gVisor on the engine, the task has its own kernel; without it, it shares the host's.
    let gvisor = docker(&["info", "-f", "{{json .Runtimes}}"]).contains("runsc");
    let inside = docker(&["exec", &runtime, "cat", "/proc/version"]);
    let host = std::fs::read_to_string("/proc/version").unwrap();
    if gvisor {
        assert_eq!(
            docker(&["inspect", "-f", "{{.HostConfig.Runtime}}", &runtime]),
            "runsc"
        );
        assert_ne!(
            inside.trim(),
            host.trim(),
            "a Fargate task under gVisor saw the host kernel"
        );
    } else {
        eprintln!(
            "runsc is not set up on this engine: the gVisor check is skipped (.ci/run sets it up)"
        );
        assert_eq!(inside.trim(), host.trim());
    }
    // EC2 on the same definition is refused only if it is not EC2-compatible; Fargate refuses privileged.
    let (status, e) = server
        .call("RegisterTaskDefinition", &json!({"family": "priv", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE, "privileged": true}]}).to_string())
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("ClientException")),
        "{e}"
    );
    // A container that takes more than the task's 512 MiB is killed for it, and the task stops.
    let (_, v) = server
        .call("RegisterTaskDefinition", &json!({"family": "hog", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE,
            "command": ["awk", "BEGIN{s=\"x\"; while(1){s=s s}}"]}]}).to_string())
        .await;
    let hog_td = v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut hog_body = body.clone();
    hog_body["taskDefinition"] = hog_td.into();
    let (_, v) = server.call("RunTask", &hog_body.to_string()).await;
    let hog = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let h = wait_for("the hog to be stopped", Duration::from_secs(60), || async {
        let (_, d) = server
            .call(
                "DescribeTasks",
                &json!({"cluster": "empty", "tasks": [hog]}).to_string(),
            )
            .await;
        let t = d["tasks"][0].clone();
        (t["lastStatus"] == "STOPPED").then_some(t)
    })
    .await;
    assert_eq!(
        h["stoppedReason"], "Essential container in task exited",
        "{h}"
    );
    assert_eq!(
        container_named(&h, "m")["reason"],
        "OutOfMemoryError: Container killed due to memory usage",
        "{h}"
    );
    assert_eq!(container_named(&h, "m")["exitCode"], 137);
    remove_labelled("gantry.task", &hog);
    server
        .call(
            "StopTask",
            &json!({"cluster": "empty", "task": task}).to_string(),
        )
        .await;
    wait_for(
        "the Fargate task to stop",
        Duration::from_secs(30),
        || async {
            let (_, d) = server
                .call(
                    "DescribeTasks",
                    &json!({"cluster": "empty", "tasks": [task]}).to_string(),
                )
                .await;
            (d["tasks"][0]["lastStatus"] == "STOPPED").then_some(())
        },
    )
    .await;
    remove_labelled("gantry.task", &task);
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", &format!("gantry-{subnet}")])
        .output();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_groups_admit_only_what_their_rules_allow() {
    let _l = lock().await;
    let env = Env::start("secgroups").await;
    let pid = std::process::id();
    // sg-srv admits TCP 8080 from members of sg-good only.
    let out = std::process::Command::new(BIN)
        .args(["security-group", "--data-dir"])
        .arg(&env.server.data_dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", env.server.port),
            "put",
            "sg-srv",
            "--ingress",
            "tcp:8080:sg-good",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web = env
        .register(json!({"family": "sgweb", "networkMode": "awsvpc", "containerDefinitions": [{"name": "web", "image": BUSYBOX_IMAGE, "memory": 32,
            "command": ["sh", "-c", "mkdir /www && echo through > /www/index.html && exec httpd -f -p 8080 -h /www"]}]}))
        .await;
    let net = |subnet: &str, group: &str| json!({"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}});
    let v = env.call("RunTask", json!({"taskDefinition": web, "networkConfiguration": net(&format!("subnet-s{pid}"), "sg-srv")})).await;
    let server_task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let t = env
        .wait_status(&server_task, "RUNNING", Duration::from_secs(30))
        .await;
    let ip = container_named(&t, "web")["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()
        .unwrap()
        .to_string();
    // Clients in another subnet: one in sg-good, one in sg-bad.
    let client = env
        .register(json!({"family": "sgclient", "networkMode": "awsvpc", "containerDefinitions": [{"name": "c", "image": BUSYBOX_IMAGE, "memory": 16,
            "command": ["sh", "-c", format!("for i in 1 2 3 4 5; do timeout 2 wget -q -O- http://{ip}:8080/ && exit 0; sleep 0.5; done; exit 1")]}]}))
        .await;
    let mut exits = Vec::new();
    for group in ["sg-good", "sg-bad"] {
        let v = env.call("RunTask", json!({"taskDefinition": client, "networkConfiguration": net(&format!("subnet-c{pid}"), group)})).await;
        let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
        let t = env
            .wait_status(&task, "STOPPED", Duration::from_secs(60))
            .await;
        exits.push(container_named(&t, "c")["exitCode"].as_i64());
    }
    assert_eq!(
        exits,
        vec![Some(0), Some(1)],
        "sg-good must get through (across subnets), sg-bad must not"
    );
    // The host still reaches the task.
    assert_eq!(
        reqwest_get(&format!("http://{ip}:8080/"))
            .await
            .as_deref()
            .map(str::trim),
        Some("through")
    );
    env.call("StopTask", json!({"task": server_task})).await;
    env.wait_status(&server_task, "STOPPED", Duration::from_secs(30))
        .await;
    // Its rules went with it.
    let rules = std::process::Command::new("iptables")
        .args(["-S", "DOCKER-USER"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&rules.stdout).contains(&format!("{ip}/32")),
        "stale rules for {ip}"
    );
    for s in [
        format!("gantry-subnet-s{pid}"),
        format!("gantry-subnet-c{pid}"),
    ] {
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &s])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_fargate_task_keeps_its_cgroup_until_cleanup() {
    let _l = lock().await;
    let env = Env::start_with(
        "adopt-fargate",
        &[],
        &["--capacity", "both", "--cleanup-wait", "1s"],
    )
    .await;
    let mut env = env;
    let td = env
        .register(
            json!({"family": "afg", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc",
            "cpu": "256", "memory": "512", "containerDefinitions": [container("m", "sleep 300")]}),
        )
        .await;
    let subnet = format!("subnet-a{}", std::process::id());
    let v = env
        .call(
            "RunTask",
            json!({"taskDefinition": td, "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": [subnet]}}}),
        )
        .await;
    let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    env.wait_status(&task, "RUNNING", Duration::from_secs(30))
        .await;
    let id = task.rsplit('/').next().unwrap();
    let dir = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        format!("/sys/fs/cgroup/gantry/{id}")
    } else {
        format!("/sys/fs/cgroup/memory/gantry/{id}")
    };
    assert!(std::path::Path::new(&dir).is_dir(), "no cgroup at {dir}");
    env.agent.kill9();
    env.agent.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.describe(&task).await["lastStatus"], "RUNNING");
    // The restarted agent stops the task, removes its containers after --cleanup-wait, and the
    // task's cgroup with them.
    env.call("StopTask", json!({"task": task})).await;
    env.wait_status(&task, "STOPPED", Duration::from_secs(30))
        .await;
    wait_for(
        "the task's cgroup to go",
        Duration::from_secs(30),
        || async {
            (!std::path::Path::new(&dir).exists() && containers_of(&task).is_empty()).then_some(())
        },
    )
    .await;
    let _ = std::process::Command::new("docker")
        .args(["network", "rm", &format!("gantry-{subnet}")])
        .output();
}
