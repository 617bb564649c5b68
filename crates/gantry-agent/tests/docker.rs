//! The agent on real Docker, in this process: the runtime's log and stats streams on busybox
//! containers, and the task registry of an agent running a task for an in-process control
//! plane. Images are built locally (FROM scratch + busybox-static); nothing is pulled. Run one
//! at a time (a lock; `--test-threads=1` too).

use gantry_agent::docker::DockerRuntime;
use gantry_agent::runtime::{ContainerRuntime, ContainerSpec, LogLine, LogSource, LogStream};
use gantry_agent::task::PullPolicy;
use gantry_agent::{Agent, AgentConfig};
use gantry_testkit::{
    docker, ensure_busybox_image, remove_labelled, temp_dir, wait_for, InProcess, BUSYBOX_IMAGE,
    IN_PROCESS_JOIN_TOKEN,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The label of this file's own containers (not an agent's), for the sweep.
const TEST_LABEL: &str = "gantry-agent.test";

/// Removes containers carrying `label=value` when dropped (also when a test fails).
struct Sweep(&'static str, String);

impl Drop for Sweep {
    fn drop(&mut self) {
        remove_labelled(self.0, &self.1);
    }
}

async fn runtime() -> (DockerRuntime, Sweep) {
    ensure_busybox_image();
    let rt = DockerRuntime::connect().await.expect("Docker is reachable");
    let run = format!("{}-{}", std::process::id(), rand_suffix());
    (rt, Sweep(TEST_LABEL, run))
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn busybox(sweep: &Sweep, name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        name: format!("gantry-agent-test-{name}-{}", sweep.1),
        image: BUSYBOX_IMAGE.into(),
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        labels: HashMap::from([(TEST_LABEL.to_string(), sweep.1.clone())]),
        network_mode: "bridge".into(),
        cpu_shares: 2,
        memory_mib: Some(32),
        ..ContainerSpec::default()
    }
}

async fn next_line(logs: &mut LogStream) -> Option<LogLine> {
    tokio::time::timeout(Duration::from_secs(20), logs.next())
        .await
        .expect("a log line (or the end) in time")
        .map(|r| r.expect("a log line, not an error"))
}

fn text(l: &LogLine) -> (LogSource, String) {
    (l.stream, String::from_utf8_lossy(&l.line).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_come_in_order_tagged_by_stream_and_follow_new_lines() {
    let _l = ONE_AT_A_TIME.lock().await;
    let (rt, sweep) = runtime().await;
    let id = rt
        .create(&busybox(
            &sweep,
            "logs",
            "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; sleep 0.2; echo err2 >&2",
        ))
        .await
        .unwrap();
    rt.start(&id).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), rt.wait(&id))
        .await
        .expect("the container exits");
    let mut logs = rt.logs(&id, None, false).await.unwrap();
    let mut lines = Vec::new();
    while let Some(l) = next_line(&mut logs).await {
        lines.push(l);
    }
    let got: Vec<(LogSource, String)> = lines.iter().map(text).collect();
    assert_eq!(
        got,
        vec![
            (LogSource::Stdout, "out1".into()),
            (LogSource::Stderr, "err1".into()),
            (LogSource::Stdout, "out2".into()),
            (LogSource::Stderr, "err2".into()),
        ]
    );
    let times: Vec<i64> = lines
        .iter()
        .map(|l| l.timestamp_ns.expect("Docker's timestamp"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    // `since` (nanoseconds) starts at the second line.
    let mut since = rt.logs(&id, Some(times[1]), false).await.unwrap();
    assert_eq!(
        next_line(&mut since).await.map(|l| text(&l)),
        Some((LogSource::Stderr, "err1".into()))
    );

    // Following: a line written after the stream was opened arrives, and the stream ends when
    // the container does.
    let id = rt
        .create(&busybox(
            &sweep,
            "follow",
            "echo first; while [ ! -e /go ]; do sleep 0.1; done; echo second >&2",
        ))
        .await
        .unwrap();
    rt.start(&id).await.unwrap();
    let mut follow = rt.logs(&id, None, true).await.unwrap();
    assert_eq!(
        next_line(&mut follow).await.map(|l| text(&l)),
        Some((LogSource::Stdout, "first".into()))
    );
    docker(&["exec", &id, "touch", "/go"]);
    assert_eq!(
        next_line(&mut follow).await.map(|l| text(&l)),
        Some((LogSource::Stderr, "second".into()))
    );
    assert!(next_line(&mut follow).await.is_none());

    assert!(rt
        .logs("gantry-no-such-container", None, false)
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_sample_a_running_container() {
    let _l = ONE_AT_A_TIME.lock().await;
    let (rt, sweep) = runtime().await;
    let id = rt
        .create(&busybox(&sweep, "stats", "sleep 60"))
        .await
        .unwrap();
    rt.start(&id).await.unwrap();
    let mut stats = rt.stats(&id).await.unwrap();
    let s = tokio::time::timeout(Duration::from_secs(20), stats.next())
        .await
        .expect("a sample in time")
        .expect("a sample")
        .expect("not an error");
    assert!(s.memory_usage_bytes > 0, "{s:?}");
    assert_eq!(s.memory_limit_bytes, 32 << 20, "{s:?}");
    assert!(s.online_cpus >= 1 && s.timestamp_ns > 0, "{s:?}");
    let t = tokio::time::timeout(Duration::from_secs(20), stats.next())
        .await
        .expect("a second sample in time")
        .expect("a second sample")
        .expect("not an error");
    assert!(t.system_cpu_ns >= s.system_cpu_ns && t.cpu_total_ns >= s.cpu_total_ns);
    rt.stop(&id, 1).await.unwrap();
    assert!(rt.stats("gantry-no-such-container").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_shows_a_running_tasks_containers_and_host_port() {
    let _l = ONE_AT_A_TIME.lock().await;
    ensure_busybox_image();
    // A control plane in this process, served on a loopback port for the agent.
    let g = InProcess::new().await;
    assert_eq!(g.call("CreateCluster", json!({})).await.0, 200);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(gantry_server::run(
        listener,
        g.server.clone(),
        std::future::pending(),
    ));

    let rt = DockerRuntime::connect().await.expect("Docker is reachable");
    let version = rt.version.clone();
    let mut cfg = AgentConfig::new(
        format!("http://127.0.0.1:{port}"),
        IN_PROCESS_JOIN_TOKEN,
        "default",
        temp_dir("agent-registry"),
    );
    cfg.tick = Duration::from_millis(100);
    cfg.pull_policy = PullPolicy::PreferCached;
    cfg.default_stop_timeout = Duration::from_secs(2);
    cfg.cleanup_wait = Duration::from_secs(1);
    let agent = Agent::new(cfg, Arc::new(rt), version);
    let registry = agent.registry();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    wait_for("the agent to register", Duration::from_secs(30), || async {
        let (_, v) = g.call("ListContainerInstances", json!({})).await;
        v["containerInstanceArns"][0].as_str().map(String::from)
    })
    .await;

    let (status, v) = g
        .call(
            "RegisterTaskDefinition",
            json!({"family": "registry", "containerDefinitions": [
                {"name": "web", "image": BUSYBOX_IMAGE, "memory": 32,
                 "command": ["sh", "-c", "mkdir /www && echo hi > /www/index.html && exec httpd -f -p 8080 -h /www"],
                 "portMappings": [{"containerPort": 8080, "hostPort": 0}]},
                {"name": "side", "image": BUSYBOX_IMAGE, "memory": 16, "essential": false,
                 "command": ["sleep", "300"]}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let td = v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = g.call("RunTask", json!({"taskDefinition": td})).await;
    assert_eq!(status, 200, "{v}");
    let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let _sweep = Sweep("gantry.task", task.clone());

    let entry = wait_for(
        "the task to run, in the registry",
        Duration::from_secs(60),
        || async {
            registry.get(&task).filter(|e| {
                e.last_status == "RUNNING"
                    && e.containers.iter().all(|c| c.last_status == "RUNNING")
                    && !e.host_ports.is_empty()
            })
        },
    )
    .await;
    assert_eq!(
        entry.assignment.task_definition.family.as_deref(),
        Some("registry")
    );
    let ids = entry.container_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for (name, id) in &ids {
        assert_eq!(&docker(&["inspect", "-f", "{{.Id}}", id]), id, "{name}");
        let (owner, found) = registry.by_container_id(id).expect("found by id");
        assert_eq!(
            (owner.task_arn.as_str(), found.as_deref()),
            (task.as_str(), Some(name.as_str()))
        );
    }
    // The host port Docker chose for web's 8080 is the task's.
    let mapped = docker(&["port", &ids["web"], "8080/tcp"]);
    let host_port: u16 = mapped
        .lines()
        .find(|l| l.starts_with("0.0.0.0:"))
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no IPv4 mapping in {mapped:?}"));
    let web = entry.container("web").unwrap();
    assert_eq!(
        web.bindings
            .iter()
            .map(|b| (b.container_port, b.host_port))
            .collect::<Vec<_>>(),
        vec![(8080, host_port)]
    );
    assert_eq!(
        entry.host_ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        vec![host_port]
    );
    // A caller from web's bridge address is found to be this task.
    let ip = docker(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.IPAddress}}",
        &ids["web"],
    ]);
    assert_eq!(registry.by_ip(&ip).map(|e| e.task_arn), Some(task.clone()));
    assert_eq!(
        web.ips,
        vec![ip.clone()],
        "the registry knows the container's address"
    );

    // Stopped and cleaned up, the task leaves the registry.
    let (status, v) = g.call("StopTask", json!({"task": task})).await;
    assert_eq!(status, 200, "{v}");
    wait_for(
        "the task to leave the registry after cleanup",
        Duration::from_secs(60),
        || async { registry.get(&task).is_none().then_some(()) },
    )
    .await;
    assert!(registry.by_ip(&ip).is_none());
    assert!(registry.by_container_id(&ids["web"]).is_none());
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=gantry.task={task}"),
    ]);
    assert!(left.is_empty(), "containers left: {left}");
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), running).await;
}
