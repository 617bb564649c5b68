//! Services on real Docker: a real server (short service timings), two real agents on the local
//! Docker, images the tests build. One test at a time.

use gantry_testkit::{
    docker, ensure_busybox_image, remove_labelled, temp_dir, wait_for, AgentProcess, GantryProcess,
    BUSYBOX_IMAGE,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());
const BIN: &str = env!("CARGO_BIN_EXE_gantry");
const AGENT: &[&str] = &[
    "--tick",
    "100ms",
    "--stop-timeout",
    "1s",
    "--pull-behavior",
    "prefer-cached",
    "--cleanup-wait",
    "1h",
];

/// Fields drop in order: agents before the server.
struct Env {
    agents: Vec<AgentProcess>,
    server: GantryProcess,
    instances: Vec<String>,
    /// The instance each agent registered, by agent index.
    agent_instances: Vec<String>,
    dir: std::path::PathBuf,
}

impl Env {
    async fn start(name: &str, agents: usize) -> Env {
        Self::start_with(name, agents, &[]).await
    }

    async fn start_with(name: &str, agents: usize, extra: &[&str]) -> Env {
        ensure_busybox_image();
        let dir = temp_dir(name);
        let mut args = vec![
            "--healthy-after",
            "1s",
            "--service-interval",
            "200ms",
            "--throttle-base",
            "1s",
            "--throttle-cap",
            "4s",
        ];
        args.extend_from_slice(extra);
        let server = GantryProcess::start_with(BIN.as_ref(), &dir.join("server"), &args).await;
        assert_eq!(server.call("CreateCluster", "{}").await.0, 200);
        let mut env = Env {
            agents: Vec::new(),
            server,
            instances: Vec::new(),
            agent_instances: Vec::new(),
            dir,
        };
        for i in 0..agents {
            env.add_agent(i).await;
        }
        env
    }

    async fn add_agent(&mut self, i: usize) {
        self.add_agent_with(i, &[]).await
    }

    async fn add_agent_with(&mut self, i: usize, extra: &[&str]) {
        let zone = format!("local-1{}", (b'a' + i as u8) as char);
        let mut args: Vec<&str> = AGENT.to_vec();
        args.extend(["--availability-zone", zone.as_str()]);
        args.extend_from_slice(extra);
        let agent = AgentProcess::start(
            BIN.as_ref(),
            &self.server,
            "default",
            &self.dir.join(format!("agent-{i}")),
            &args,
        );
        self.agents.push(agent);
        let want = self.agents.len();
        let before = self.instances.clone();
        self.instances = wait_for("agents to register", Duration::from_secs(30), || async {
            let (_, v) = self.server.call("ListContainerInstances", "{}").await;
            let arns: Vec<String> = v["containerInstanceArns"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            (arns.len() == want).then_some(arns)
        })
        .await;
        let new = self
            .instances
            .iter()
            .find(|a| !before.contains(a))
            .cloned()
            .unwrap_or_default();
        self.agent_instances.push(new);
    }

    async fn call(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.server.call(op, &body.to_string()).await;
        assert_eq!(status, 200, "{op} {body}: {v}");
        v
    }

    async fn register(&self, family: &str, container: Value) -> String {
        let v = self
            .call(
                "RegisterTaskDefinition",
                json!({"family": family, "containerDefinitions": [container]}),
            )
            .await;
        v["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn service(&self, name: &str) -> Value {
        self.call("DescribeServices", json!({"services": [name]}))
            .await["services"][0]
            .clone()
    }

    /// What `aws ecs wait services-stable` waits for: one deployment, runningCount == desiredCount.
    async fn stable(&self, name: &str, timeout: Duration) -> Value {
        wait_for(&format!("{name} to be stable"), timeout, || async {
            let s = self.service(name).await;
            (s["deployments"].as_array().map(|d| d.len()) == Some(1)
                && s["runningCount"] == s["desiredCount"])
                .then_some(s)
        })
        .await
    }

    async fn running_tasks(&self, name: &str) -> Vec<Value> {
        let v = self.call("ListTasks", json!({"serviceName": name})).await;
        let arns = v["taskArns"].as_array().unwrap().clone();
        if arns.is_empty() {
            return Vec::new();
        }
        let d = self.call("DescribeTasks", json!({"tasks": arns})).await;
        d["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING")
            .cloned()
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Agents first: otherwise services replace what is removed below.
        for a in &mut self.agents {
            a.kill9();
        }
        for arn in &self.instances {
            remove_labelled("gantry.container-instance", arn);
        }
    }
}

fn sleeper(seconds: u32) -> Value {
    json!({"name": "main", "image": BUSYBOX_IMAGE, "memory": 16, "command": ["sleep", seconds.to_string()]})
}

fn messages(s: &Value) -> Vec<String> {
    s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_replace_and_delete() {
    let _l = ONE_AT_A_TIME.lock().await;
    let env = Env::start("svc-scale", 2).await;
    let td = env.register("svc", sleeper(3600)).await;
    let v = env
        .call(
            "CreateService",
            json!({"serviceName": "web", "taskDefinition": td, "desiredCount": 3}),
        )
        .await;
    assert_eq!(v["service"]["status"], "ACTIVE");
    assert_eq!(v["service"]["deployments"][0]["status"], "PRIMARY");
    let s = env.stable("web", Duration::from_secs(60)).await;
    assert_eq!(s["runningCount"], 3);
    let s = wait_for(
        "rollout COMPLETED and a steady state",
        Duration::from_secs(20),
        || async {
            let s = env.service("web").await;
            (s["deployments"][0]["rolloutState"] == "COMPLETED"
                && messages(&s)
                    .iter()
                    .any(|m| m == "(service web) has reached a steady state."))
            .then_some(s)
        },
    )
    .await;
    assert!(
        messages(&s)
            .iter()
            .any(|m| m.starts_with("(service web) has started 3 tasks:")),
        "{:?}",
        messages(&s)
    );
    // Spread over the two zones.
    let tasks = env.running_tasks("web").await;
    let mut per_instance = std::collections::BTreeMap::new();
    for t in &tasks {
        *per_instance
            .entry(t["containerInstanceArn"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(per_instance.len(), 2, "{per_instance:?}");

    // Kill a task's container: the task stops and the service replaces it.
    let victim = tasks[0]["taskArn"].as_str().unwrap().to_string();
    docker(&[
        "kill",
        tasks[0]["containers"][0]["runtimeId"].as_str().unwrap(),
    ]);
    wait_for("a replacement", Duration::from_secs(30), || async {
        let running = env.running_tasks("web").await;
        (running.len() == 3 && !running.iter().any(|t| t["taskArn"] == victim.as_str()))
            .then_some(())
    })
    .await;

    // Scale down, then delete.
    env.call(
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    )
    .await;
    let s = env.stable("web", Duration::from_secs(30)).await;
    assert_eq!(s["runningCount"], 1);
    let (status, e) = env
        .server
        .call("DeleteService", r#"{"service":"web"}"#)
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    let v = env
        .call("DeleteService", json!({"service": "web", "force": true}))
        .await;
    assert_eq!(v["service"]["status"], "DRAINING");
    wait_for(
        "the service to become INACTIVE",
        Duration::from_secs(30),
        || async { (env.service("web").await["status"] == "INACTIVE").then_some(()) },
    )
    .await;
    assert!(env.running_tasks("web").await.is_empty());
    let listed = env.call("ListServices", json!({})).await;
    assert_eq!(listed["serviceArns"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_keeps_the_minimum_healthy() {
    let _l = ONE_AT_A_TIME.lock().await;
    let env = Env::start("svc-rolling", 2).await;
    let v1 = env.register("roll", sleeper(3600)).await;
    let v2 = env.register("roll", sleeper(3601)).await;
    env.call(
        "CreateService",
        json!({"serviceName": "roll", "taskDefinition": v1, "desiredCount": 4,
               "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}}),
    )
    .await;
    env.stable("roll", Duration::from_secs(60)).await;
    env.call(
        "UpdateService",
        json!({"service": "roll", "taskDefinition": v2}),
    )
    .await;
    // Sample while it rolls: never below 50 % of 4 RUNNING, never above 100 %.
    let started = Instant::now();
    let mut samples = 0;
    let mut saw_two_deployments = false;
    loop {
        let s = env.service("roll").await;
        let running = s["runningCount"].as_i64().unwrap();
        let deployments = s["deployments"].as_array().unwrap().len();
        saw_two_deployments |= deployments == 2;
        assert!(
            running >= 2,
            "below minimumHealthyPercent: {running} running"
        );
        let live = env.call("ListTasks", json!({"serviceName": "roll"})).await["taskArns"]
            .as_array()
            .unwrap()
            .len();
        assert!(live <= 4, "above maximumPercent: {live} tasks");
        samples += 1;
        if deployments == 1
            && s["deployments"][0]["taskDefinition"] == v2.as_str()
            && s["runningCount"] == 4
        {
            assert_eq!(s["taskDefinition"], v2.as_str());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the deployment did not finish: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_two_deployments && samples > 3);
    let s = wait_for("COMPLETED", Duration::from_secs(20), || async {
        let s = env.service("roll").await;
        (s["deployments"][0]["rolloutState"] == "COMPLETED").then_some(s)
    })
    .await;
    assert!(
        env.running_tasks("roll")
            .await
            .iter()
            .all(|t| t["taskDefinitionArn"] == v2.as_str()),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_rolls_back_an_image_that_cannot_be_pulled() {
    let _l = ONE_AT_A_TIME.lock().await;
    let env = Env::start("svc-breaker", 2).await;
    let good = env.register("brk", sleeper(3600)).await;
    let bad = env
        .register(
            "brk",
            json!({"name": "main", "image": "127.0.0.1:1/gantry/missing:1", "memory": 16}),
        )
        .await;
    env.call(
        "CreateService",
        json!({"serviceName": "brk", "taskDefinition": good, "desiredCount": 2,
               "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    env.stable("brk", Duration::from_secs(60)).await;
    wait_for(
        "the first deployment to complete",
        Duration::from_secs(20),
        || async {
            (env.service("brk").await["deployments"][0]["rolloutState"] == "COMPLETED")
                .then_some(())
        },
    )
    .await;
    env.call(
        "UpdateService",
        json!({"service": "brk", "taskDefinition": bad}),
    )
    .await;
    let s = wait_for(
        "the rollback to finish",
        Duration::from_secs(90),
        || async {
            let s = env.service("brk").await;
            let m = messages(&s);
            (m.iter()
                .any(|x| x.contains("deployment failed: tasks failed to start."))
                && s["deployments"].as_array().unwrap().len() == 1
                && s["deployments"][0]["taskDefinition"] == good.as_str()
                && s["runningCount"] == 2)
                .then_some(s)
        },
    )
    .await;
    assert!(
        messages(&s)
            .iter()
            .any(|m| m.contains("rolling back to deployment")),
        "{:?}",
        messages(&s)
    );
    assert_eq!(s["taskDefinition"], good.as_str());
    // The old tasks kept running through it all.
    assert!(env
        .running_tasks("brk")
        .await
        .iter()
        .all(|t| t["taskDefinitionArn"] == good.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_revision_backs_off_and_fails_the_deployment() {
    let _l = ONE_AT_A_TIME.lock().await;
    let env = Env::start("svc-crash", 1).await;
    let crash = env
        .register("crash", json!({"name": "main", "image": BUSYBOX_IMAGE, "memory": 16, "command": ["sh", "-c", "exit 1"]}))
        .await;
    env.call(
        "CreateService",
        json!({"serviceName": "crash", "taskDefinition": crash, "desiredCount": 1,
               "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": false}}}),
    )
    .await;
    let s = wait_for(
        "the deployment to fail",
        Duration::from_secs(90),
        || async {
            let s = env.service("crash").await;
            (s["deployments"][0]["rolloutState"] == "FAILED").then_some(s)
        },
    )
    .await;
    let m = messages(&s);
    assert!(
        m.iter()
            .any(|x| x == "(service crash) is unable to consistently start tasks successfully."),
        "{m:?}"
    );
    assert_eq!(
        s["deployments"][0]["rolloutStateReason"],
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert!(s["deployments"][0]["failedTasks"].as_i64().unwrap() >= 3);
    // With the throttle (1 s, 2 s, 4 s …) the three failures cannot all land in the first seconds.
    let d = env
        .call("ListTasks", json!({"desiredStatus": "STOPPED"}))
        .await;
    let arns = d["taskArns"].as_array().unwrap().clone();
    let tasks = env.call("DescribeTasks", json!({"tasks": arns})).await;
    let mut created: Vec<f64> = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["createdAt"].as_f64())
        .collect();
    created.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(created.len() >= 3);
    let gaps: Vec<f64> = created.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.last().unwrap() >= &1.0,
        "no backoff between launches: {gaps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_service_follows_instances() {
    let _l = ONE_AT_A_TIME.lock().await;
    let mut env = Env::start("svc-daemon", 2).await;
    let td = env.register("dmn", sleeper(3600)).await;
    let v = env
        .call(
            "CreateService",
            json!({"serviceName": "dmn", "taskDefinition": td, "schedulingStrategy": "DAEMON"}),
        )
        .await;
    assert_eq!(v["service"]["schedulingStrategy"], "DAEMON");
    let s = env.stable("dmn", Duration::from_secs(60)).await;
    assert_eq!(s["desiredCount"], 2);
    let on = |tasks: &[Value]| {
        let mut v: Vec<String> = tasks
            .iter()
            .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut all = env.instances.clone();
    all.sort();
    assert_eq!(on(&env.running_tasks("dmn").await), all);
    // Draining an instance takes its daemon task away.
    let drained = env.instances[0].clone();
    env.call(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [env.instances[0]], "status": "DRAINING"}),
    )
    .await;
    wait_for("one daemon task left", Duration::from_secs(30), || async {
        let s = env.service("dmn").await;
        (s["desiredCount"] == 1 && s["runningCount"] == 1).then_some(())
    })
    .await;
    // An instance that joins gets one.
    env.add_agent(2).await;
    wait_for(
        "a daemon task on the new instance",
        Duration::from_secs(30),
        || async {
            let s = env.service("dmn").await;
            (s["desiredCount"] == 2 && s["runningCount"] == 2).then_some(())
        },
    )
    .await;
    let running = on(&env.running_tasks("dmn").await);
    assert_eq!(running.len(), 2);
    assert!(
        !running.contains(&drained),
        "a daemon task runs on the DRAINING instance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_of_a_lost_host_are_replaced() {
    let _l = ONE_AT_A_TIME.lock().await;
    let mut env = Env::start_with(
        "svc-lost",
        2,
        &[
            "--agent-timeout",
            "1s",
            "--lost-host-timeout",
            "3s",
            "--lost-task-grace",
            "2s",
        ],
    )
    .await;
    let td = env.register("lost", sleeper(3600)).await;
    env.call(
        "CreateService",
        json!({"serviceName": "lost", "taskDefinition": td, "desiredCount": 2}),
    )
    .await;
    env.stable("lost", Duration::from_secs(60)).await;
    let tasks = env.running_tasks("lost").await;
    let lost_instance = env.agent_instances[0].clone();
    let on_lost: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["containerInstanceArn"] == lost_instance.as_str())
        .collect();
    assert_eq!(on_lost.len(), 1, "spread should put one task on each host");
    let lost_task = on_lost[0]["taskArn"].as_str().unwrap().to_string();
    let lost_container = on_lost[0]["containers"][0]["runtimeId"]
        .as_str()
        .unwrap()
        .to_string();

    // The host's agent goes away for longer than the lost-host timeout.
    env.agents[0].kill9();
    let t = wait_for(
        "the lost task to be STOPPED",
        Duration::from_secs(30),
        || async {
            let d = env
                .call("DescribeTasks", json!({"tasks": [lost_task]}))
                .await;
            let t = d["tasks"][0].clone();
            (t["lastStatus"] == "STOPPED").then_some(t)
        },
    )
    .await;
    assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .contains(&lost_instance),
        "{t}"
    );
    // The service replaced it on the other host.
    let s = env.stable("lost", Duration::from_secs(30)).await;
    assert_eq!(s["runningCount"], 2);
    let running = env.running_tasks("lost").await;
    assert!(running
        .iter()
        .all(|t| t["containerInstanceArn"] != lost_instance.as_str()));
    // The container outlived its agent; when the agent returns it stops it.
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &lost_container]),
        "true"
    );
    env.agents[0].restart();
    wait_for(
        "the returning agent to stop the orphaned container",
        Duration::from_secs(30),
        || async {
            let out = std::process::Command::new("docker")
                .args(["inspect", "-f", "{{.State.Running}}", &lost_container])
                .output()
                .ok()?;
            // Stopped, or stopped and removed.
            (!out.status.success() || String::from_utf8_lossy(&out.stdout).trim() == "false")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capacity_provider_strategy_splits_a_service_and_moves_it() {
    let _l = ONE_AT_A_TIME.lock().await;
    let mut env = Env::start("svc-providers", 0).await;
    for name in ["steady-pool", "spot-pool"] {
        env.call("CreateCapacityProvider", json!({"name": name}))
            .await;
    }
    env.call(
        "PutClusterCapacityProviders",
        json!({"cluster": "default", "capacityProviders": ["steady-pool", "spot-pool"],
               "defaultCapacityProviderStrategy": []}),
    )
    .await;
    env.add_agent_with(0, &["--capacity-provider", "steady-pool"])
        .await;
    env.add_agent_with(1, &["--capacity-provider", "spot-pool"])
        .await;
    let host = |p: &str| {
        let i = if p == "steady-pool" { 0 } else { 1 };
        env.agent_instances[i].clone()
    };
    let td = env.register("cp", sleeper(3600)).await;
    let v = env
        .call(
            "CreateService",
            json!({"serviceName": "cp", "taskDefinition": td, "desiredCount": 5,
                   "capacityProviderStrategy": [
                       {"capacityProvider": "steady-pool", "base": 1, "weight": 1},
                       {"capacityProvider": "spot-pool", "weight": 1}]}),
        )
        .await;
    assert_eq!(v["service"]["capacityProviderStrategy"][0]["base"], 1);
    assert!(v["service"]["launchType"].is_null(), "{v}");
    env.stable("cp", Duration::from_secs(60)).await;
    let count = |tasks: &[Value], p: &str| {
        tasks
            .iter()
            .filter(|t| t["capacityProviderName"] == p)
            .inspect(|t| assert_eq!(t["containerInstanceArn"].as_str(), Some(host(p).as_str())))
            .count()
    };
    let tasks = env.running_tasks("cp").await;
    assert_eq!(
        (count(&tasks, "steady-pool"), count(&tasks, "spot-pool")),
        (3, 2),
        "base 1 on steady-pool, the other 4 split 1:1"
    );
    // An unknown provider is refused and changes nothing.
    let (status, e) = env
        .server
        .call(
            "UpdateService",
            &json!({"service": "cp", "capacityProviderStrategy": [{"capacityProvider": "nope", "weight": 1}]})
                .to_string(),
        )
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{e}"
    );
    // A new strategy rolls the service onto spot-pool alone.
    env.call(
        "UpdateService",
        json!({"service": "cp", "capacityProviderStrategy": [{"capacityProvider": "spot-pool", "weight": 1}]}),
    )
    .await;
    wait_for(
        "all tasks on spot-pool",
        Duration::from_secs(60),
        || async {
            let s = env.service("cp").await;
            let tasks = env.running_tasks("cp").await;
            (s["deployments"].as_array().map(|d| d.len()) == Some(1)
                && tasks.len() == 5
                && count(&tasks, "spot-pool") == 5)
                .then_some(())
        },
    )
    .await;
}
