//! Placement end to end: a real server, two real agents on the local Docker with different
//! attributes and sizes, and twenty simulated instances (`gantry sim`); RunTask with each
//! strategy and constraint, observed through DescribeTasks.

use gantry_testkit::{
    ensure_busybox_image, remove_labelled, temp_dir, wait_for, AgentProcess, Background,
    GantryProcess, BUSYBOX_IMAGE,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gantry");
const SIMS: usize = 20;

/// Fields drop in order: the agents go before the server they poll.
struct Cluster {
    _sim: Background,
    _agents: Vec<AgentProcess>,
    server: GantryProcess,
    /// Real agents' instance ARNs: [small web host, larger batch host].
    real: Vec<String>,
    /// Every instance ARN → its availability zone.
    zones: BTreeMap<String, String>,
}

impl Cluster {
    async fn call(&self, op: &str, body: Value) -> Value {
        let (status, v) = self.server.call(op, &body.to_string()).await;
        assert_eq!(status, 200, "{op} {body}: {v}");
        v
    }

    /// RunTask; returns the instance of each placed task, and the failures.
    async fn run(&self, body: Value) -> (Vec<String>, Vec<Value>) {
        let v = self.call("RunTask", body).await;
        let tasks: Vec<String> = v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskArn"].as_str().unwrap().to_string())
            .collect();
        let mut placed = Vec::new();
        if !tasks.is_empty() {
            let d = self.call("DescribeTasks", json!({"tasks": tasks})).await;
            for t in d["tasks"].as_array().unwrap() {
                placed.push(t["containerInstanceArn"].as_str().unwrap().to_string());
            }
        }
        (placed, v["failures"].as_array().unwrap().clone())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for arn in &self.real {
            remove_labelled("gantry.container-instance", arn);
        }
    }
}

async fn cluster() -> Cluster {
    ensure_busybox_image();
    let dir = temp_dir("placement");
    let server = GantryProcess::start(BIN.as_ref(), &dir.join("server")).await;
    assert_eq!(server.call("CreateCluster", "{}").await.0, 200);
    let common = [
        "--tick",
        "200ms",
        "--stop-timeout",
        "1s",
        "--pull-behavior",
        "prefer-cached",
    ];
    let web: Vec<&str> = common
        .iter()
        .copied()
        .chain([
            "--memory",
            "1024",
            "--availability-zone",
            "local-1a",
            "--attribute",
            "role=web",
        ])
        .collect();
    let batch: Vec<&str> = common
        .iter()
        .copied()
        .chain([
            "--memory",
            "2048",
            "--availability-zone",
            "local-1b",
            "--attribute",
            "role=batch",
        ])
        .collect();
    let agents = vec![
        AgentProcess::start(
            BIN.as_ref(),
            &server,
            "default",
            &dir.join("agent-web"),
            &web,
        ),
        AgentProcess::start(
            BIN.as_ref(),
            &server,
            "default",
            &dir.join("agent-batch"),
            &batch,
        ),
    ];
    let token = server.join_token();
    let sim_dir = dir.join("sim").display().to_string();
    let n = SIMS.to_string();
    let sim = Background::spawn(
        BIN.as_ref(),
        &[
            "sim",
            "--server",
            &server.endpoint(),
            "--join-token",
            &token,
            "--instances",
            &n,
            "--zones",
            "3",
            "--data-dir",
            &sim_dir,
        ],
    );
    let arns = wait_for(
        "all instances to register",
        Duration::from_secs(60),
        || async {
            let (_, v) = server.call("ListContainerInstances", "{}").await;
            let arns: Vec<String> = v["containerInstanceArns"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
                .collect();
            (arns.len() == SIMS + 2).then_some(arns)
        },
    )
    .await;
    let (_, d) = server
        .call(
            "DescribeContainerInstances",
            &json!({"containerInstances": arns}).to_string(),
        )
        .await;
    let mut zones = BTreeMap::new();
    let mut real = vec![String::new(), String::new()];
    for ci in d["containerInstances"].as_array().unwrap() {
        let arn = ci["containerInstanceArn"].as_str().unwrap().to_string();
        let attr = |n: &str| {
            ci["attributes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["name"] == n)
                .and_then(|a| a["value"].as_str())
                .map(String::from)
        };
        zones.insert(arn.clone(), attr("ecs.availability-zone").unwrap());
        match attr("role").as_deref() {
            Some("web") => real[0] = arn,
            Some("batch") => real[1] = arn,
            _ => {}
        }
    }
    assert!(!real[0].is_empty() && !real[1].is_empty());
    Cluster {
        _sim: sim,
        _agents: agents,
        server,
        real,
        zones,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_and_constraints_place_tasks_where_ecs_would() {
    let c = cluster().await;
    let td = c
        .call(
            "RegisterTaskDefinition",
            json!({"family": "placed", "containerDefinitions": [{"name": "m", "image": BUSYBOX_IMAGE, "memory": 300, "command": ["sleep", "300"]}]}),
        )
        .await;
    let td = td["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();

    // memberOf on a custom attribute: only the web host.
    let (placed, _) = c
        .run(
            json!({"taskDefinition": td, "count": 2, "group": "g-member",
            "placementConstraints": [{"type": "memberOf", "expression": "attribute:role == web"}]}),
        )
        .await;
    assert_eq!(placed, vec![c.real[0].clone(), c.real[0].clone()]);

    // binpack(memory): the fullest host that fits, the web host (1024 - 600 left), until it is full.
    let (placed, _) = c
        .run(
            json!({"taskDefinition": td, "count": 2, "group": "g-binpack",
            "placementStrategy": [{"type": "binpack", "field": "memory"}]}),
        )
        .await;
    assert_eq!(
        placed[0], c.real[0],
        "binpack should fill the web host first"
    );
    assert_eq!(
        placed[1], c.real[1],
        "then the next-fullest host that fits (batch, 2048 MiB)"
    );

    // memberOf that nothing satisfies: every instance explains itself.
    let (placed, failures) = c
        .run(json!({"taskDefinition": td, "placementConstraints": [{"type": "memberOf", "expression": "attribute:role == gpu"}]}))
        .await;
    assert!(placed.is_empty());
    assert_eq!(failures.len(), SIMS + 2);
    assert!(
        failures
            .iter()
            .filter(|f| f["arn"] != c.real[0].as_str())
            .all(|f| f["reason"] == "MemberOf placement constraint unsatisfied."),
        "{failures:?}"
    );
    // The web host is full (3 × 300 MiB of 1024): its reason is its memory.
    assert!(
        failures
            .iter()
            .any(|f| f["arn"] == c.real[0].as_str() && f["reason"] == "RESOURCE:MEMORY"),
        "{failures:?}"
    );

    // distinctInstance: every task on its own instance.
    let (distinct, _) = c
        .run(json!({"taskDefinition": td, "count": 8, "group": "g-distinct", "placementConstraints": [{"type": "distinctInstance"}]}))
        .await;
    assert_eq!(distinct.iter().collect::<BTreeSet<_>>().len(), 8);

    // spread(attribute:ecs.availability-zone): two per zone.
    let (placed, _) = c
        .run(json!({"taskDefinition": td, "count": 6, "group": "g-zones",
            "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}]}))
        .await;
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &placed {
        *per_zone.entry(c.zones[p].as_str()).or_default() += 1;
    }
    assert_eq!(
        per_zone.values().copied().collect::<Vec<_>>(),
        vec![2, 2, 2],
        "{per_zone:?}"
    );

    // spread(instanceId): ten tasks on ten instances; a second call continues on empty ones.
    let (first, _) = c
        .run(json!({"taskDefinition": td, "count": 10, "group": "g-spread", "placementStrategy": [{"type": "spread", "field": "instanceId"}]}))
        .await;
    let (second, _) = c
        .run(json!({"taskDefinition": td, "count": 10, "group": "g-spread", "placementStrategy": [{"type": "spread", "field": "instanceId"}]}))
        .await;
    let all: BTreeSet<&String> = first.iter().chain(second.iter()).collect();
    assert_eq!(
        all.len(),
        20,
        "spread reused an instance while others had none of the group"
    );

    // Anti-affinity through task:group: not where g-distinct runs.
    let (placed, _) = c
        .run(json!({"taskDefinition": td, "count": 5, "group": "g-anti",
            "placementConstraints": [{"type": "memberOf", "expression": "not(task:group == g-distinct)"}]}))
        .await;
    assert_eq!(placed.len(), 5);
    assert!(
        placed.iter().all(|p| !distinct.contains(p)),
        "placed next to g-distinct"
    );

    // Custom attributes through the API, then a constraint on them.
    let target = c
        .zones
        .keys()
        .find(|a| !c.real.contains(a))
        .unwrap()
        .clone();
    c.call(
        "PutAttributes",
        json!({"attributes": [{"name": "tier", "value": "gold", "targetId": target}]}),
    )
    .await;
    let listed = c
        .call(
            "ListAttributes",
            json!({"targetType": "container-instance", "attributeName": "tier"}),
        )
        .await;
    assert_eq!(listed["attributes"][0]["targetId"], target.as_str());
    let filtered = c
        .call(
            "ListContainerInstances",
            json!({"filter": "attribute:tier == gold"}),
        )
        .await;
    assert_eq!(filtered["containerInstanceArns"], json!([target]));
    let (placed, _) = c
        .run(json!({"taskDefinition": td, "placementConstraints": [{"type": "memberOf", "expression": "attribute:tier =~ gol.*"}]}))
        .await;
    assert_eq!(placed, vec![target.clone()]);
    c.call(
        "DeleteAttributes",
        json!({"attributes": [{"name": "tier", "targetId": target}]}),
    )
    .await;
    let filtered = c
        .call(
            "ListContainerInstances",
            json!({"filter": "attribute:tier exists"}),
        )
        .await;
    assert_eq!(filtered["containerInstanceArns"], json!([]));

    // DRAINING instances get no new tasks.
    c.call(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [c.real[1]], "status": "DRAINING"}),
    )
    .await;
    let (placed, _) = c
        .run(json!({"taskDefinition": td, "placementConstraints": [{"type": "memberOf", "expression": "attribute:role == batch"}]}))
        .await;
    assert!(placed.is_empty());
    let draining = c
        .call("ListContainerInstances", json!({"status": "DRAINING"}))
        .await;
    assert_eq!(draining["containerInstanceArns"], json!([c.real[1]]));

    // The tasks on the real hosts really run.
    let on_web = c
        .call("ListTasks", json!({"containerInstance": c.real[0]}))
        .await;
    for t in on_web["taskArns"].as_array().unwrap() {
        wait_for("a real task to run", Duration::from_secs(30), || async {
            let d = c.call("DescribeTasks", json!({"tasks": [t]})).await;
            (d["tasks"][0]["lastStatus"] == "RUNNING").then_some(())
        })
        .await;
    }
    // Malformed strategies and expressions are refused clearly.
    let (status, e) = c
        .server
        .call("RunTask", &json!({"taskDefinition": td, "placementStrategy": [{"type": "binpack", "field": "disk"}]}).to_string())
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{e}"
    );
    let (status, e) = c
        .server
        .call("RunTask", &json!({"taskDefinition": td, "placementConstraints": [{"type": "memberOf", "expression": "attribute:a =="}]}).to_string())
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("expected a value"),
        "{e}"
    );
}
