//! Placement commits in one place and re-checks fit: concurrent RunTask calls never over-commit
//! an instance. In-process server, real router, real agent endpoint.

use gantry_testkit::InProcess;
use serde_json::json;
use std::sync::Arc;

async fn cluster_with_one_agent(memory: i64) -> (Arc<InProcess>, String) {
    let g = Arc::new(InProcess::new().await);
    assert_eq!(g.call("CreateCluster", json!({})).await.0, 200);
    let (status, v) = g
        .agent(
            "/agent/v1/register",
            json!({"cluster": "default", "hostname": "h1", "attributes": [], "versionInfo": {},
                   "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                                      {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let arn = v["containerInstance"]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    (g, arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_run_task_calls_cannot_over_commit() {
    let (g, instance) = cluster_with_one_agent(1000).await;
    let (_, td) = g
        .call("RegisterTaskDefinition", json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 100}]}))
        .await;
    let td = td["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let (g, td) = (g.clone(), td.clone());
        calls.spawn(async move { g.call("RunTask", json!({"taskDefinition": td})).await });
    }
    let mut placed = 0;
    let mut refused = 0;
    while let Some(r) = calls.join_next().await {
        let (status, v) = r.unwrap();
        assert_eq!(status, 200, "{v}");
        placed += v["tasks"].as_array().unwrap().len();
        if v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["reason"] == "RESOURCE:MEMORY")
        {
            refused += 1;
        }
    }
    assert_eq!(placed, 10, "1000 MiB holds exactly ten 100 MiB tasks");
    assert_eq!(refused, 15);
    let (_, v) = g
        .call(
            "DescribeContainerInstances",
            json!({"containerInstances": [instance]}),
        )
        .await;
    let rem = &v["containerInstances"][0]["remainingResources"];
    let mem = rem
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .unwrap();
    assert_eq!(mem["integerValue"], 0);
    assert_eq!(v["containerInstances"][0]["pendingTasksCount"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_sees_its_tasks_and_reports_move_them_forward_only() {
    let (g, instance) = cluster_with_one_agent(1000).await;
    let (_, td) = g
        .call("RegisterTaskDefinition", json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 100}]}))
        .await;
    let td = td["taskDefinition"]["taskDefinitionArn"].as_str().unwrap();
    let (_, v) = g.call("RunTask", json!({"taskDefinition": td})).await;
    let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(v["tasks"][0]["lastStatus"], "PROVISIONING");
    let (status, poll) = g
        .agent(
            "/agent/v1/poll",
            json!({"containerInstanceArn": instance, "revision": 0, "waitMs": 0}),
        )
        .await;
    assert_eq!(status, 200, "{poll}");
    assert_eq!(poll["tasks"][0]["task"]["taskArn"], task.as_str());
    assert_eq!(poll["tasks"][0]["taskDefinition"]["family"], "f");
    let report = |status: &str| {
        json!({"containerInstanceArn": instance, "tasks": [{"taskArn": task, "lastStatus": status,
               "containers": [{"name": "c", "lastStatus": if status == "STOPPED" { "STOPPED" } else { "RUNNING" }, "exitCode": if status == "STOPPED" { json!(0) } else { json!(null) }}]}]})
    };
    assert_eq!(g.agent("/agent/v1/report", report("RUNNING")).await.0, 200);
    let (_, v) = g.agent("/agent/v1/report", report("PENDING")).await;
    assert_eq!(
        v["ignored"][0],
        task.as_str(),
        "a backwards report is ignored"
    );
    let (_, d) = g.call("DescribeTasks", json!({"tasks": [task]})).await;
    assert_eq!(d["tasks"][0]["lastStatus"], "RUNNING");
    assert!(d["tasks"][0]["startedAt"].is_f64());
    // A long poll at the current revision waits, and wakes on StopTask.
    let rev = poll["revision"].as_u64().unwrap();
    let waiter = {
        let (g, instance) = (g.clone(), instance.clone());
        tokio::spawn(async move {
            g.agent(
                "/agent/v1/poll",
                json!({"containerInstanceArn": instance, "revision": rev, "waitMs": 10000}),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "the poll should wait for a change");
    g.call("StopTask", json!({"task": task})).await;
    let (_, woke) = waiter.await.unwrap();
    assert_eq!(woke["tasks"][0]["task"]["desiredStatus"], "STOPPED");
    assert_eq!(g.agent("/agent/v1/report", report("STOPPED")).await.0, 200);
    let (_, d) = g.call("DescribeTasks", json!({"tasks": [task]})).await;
    assert_eq!(d["tasks"][0]["lastStatus"], "STOPPED");
    assert_eq!(d["tasks"][0]["stopCode"], "UserInitiated");
    // Stopped tasks leave the desired set and free their resources.
    let (_, poll) = g
        .agent(
            "/agent/v1/poll",
            json!({"containerInstanceArn": instance, "revision": 0, "waitMs": 0}),
        )
        .await;
    assert_eq!(poll["tasks"], json!([]));
    // Agents need the join token.
    let (_, v) = g
        .call("ListTasks", json!({"desiredStatus": "STOPPED"}))
        .await;
    assert_eq!(v["taskArns"][0], task.as_str());
}

#[tokio::test]
async fn the_agent_endpoint_refuses_a_wrong_token() {
    let g = InProcess::new().await;
    let req = axum::http::Request::post("/agent/v1/poll")
        .header("authorization", "Bearer wrong")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(gantry_server::http::router(g.server.clone()), req)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_provider_strategies_split_by_base_and_weight() {
    let g = Arc::new(InProcess::new().await);
    for name in ["spot-pool", "steady-pool"] {
        let (status, v) = g
            .call("CreateCapacityProvider", json!({"name": name}))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let (status, v) = g
        .call(
            "CreateCluster",
            json!({"capacityProviders": ["spot-pool", "steady-pool"],
            "defaultCapacityProviderStrategy": [{"capacityProvider": "steady-pool", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let mut by_provider = std::collections::BTreeMap::new();
    for (host, provider) in [("h1", "spot-pool"), ("h2", "steady-pool")] {
        let (status, v) = g
            .agent("/agent/v1/register", json!({"cluster": "default", "hostname": host, "attributes": [], "versionInfo": {},
                "capacityProvider": provider,
                "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 4096}, {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}]}))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["containerInstance"]["capacityProviderName"], provider);
        by_provider.insert(
            provider,
            v["containerInstance"]["containerInstanceArn"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (_, td) = g.call("RegisterTaskDefinition", json!({"family": "f", "containerDefinitions": [{"name": "c", "image": "x", "memory": 10}]})).await;
    let td = td["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, v) = g
        .call("RunTask", json!({"taskDefinition": td, "count": 10, "capacityProviderStrategy": [
            {"capacityProvider": "steady-pool", "base": 2, "weight": 1}, {"capacityProvider": "spot-pool", "weight": 3}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 10);
    let count = |p: &str| {
        tasks
            .iter()
            .filter(|t| t["capacityProviderName"] == p)
            .count()
    };
    assert_eq!(
        (count("steady-pool"), count("spot-pool")),
        (4, 6),
        "base 2, then 1:3 of the other 8"
    );
    for t in tasks {
        let p = t["capacityProviderName"].as_str().unwrap();
        assert_eq!(
            t["containerInstanceArn"],
            by_provider[p].as_str(),
            "a {p} task on another provider's host"
        );
    }
    // Neither launchType nor strategy: the cluster's default strategy.
    let (_, v) = g
        .call("RunTask", json!({"taskDefinition": td, "count": 2}))
        .await;
    assert!(
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["capacityProviderName"] == "steady-pool"),
        "{v}"
    );
    // So does CreateService; a DAEMON service takes no strategy.
    let (status, v) = g
        .call(
            "CreateService",
            json!({"serviceName": "s", "taskDefinition": td, "desiredCount": 0}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["service"]["capacityProviderStrategy"][0]["capacityProvider"],
        "steady-pool"
    );
    assert!(v["service"]["launchType"].is_null(), "{v}");
    let (status, e) = g
        .call(
            "CreateService",
            json!({"serviceName": "d", "taskDefinition": td, "schedulingStrategy": "DAEMON",
            "capacityProviderStrategy": [{"capacityProvider": "spot-pool", "weight": 1}]}),
        )
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("InvalidParameterException")),
        "{e}"
    );
    // Both at once, unknown providers, providers not attached to the cluster, mixing Fargate
    // and others: refused.
    for bad in [
        json!({"taskDefinition": td, "launchType": "EC2", "capacityProviderStrategy": [{"capacityProvider": "spot-pool", "weight": 1}]}),
        json!({"taskDefinition": td, "capacityProviderStrategy": [{"capacityProvider": "nope", "weight": 1}]}),
        json!({"taskDefinition": td, "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]}),
        json!({"taskDefinition": td, "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}, {"capacityProvider": "spot-pool", "weight": 1}]}),
    ] {
        let (status, e) = g.call("RunTask", bad).await;
        assert_eq!(
            (status, e["__type"].as_str()),
            (400, Some("InvalidParameterException")),
            "{e}"
        );
    }
    // Describe lists the built-in providers too; a provider in use cannot be deleted.
    let (_, d) = g.call("DescribeCapacityProviders", json!({})).await;
    let names: Vec<&str> = d["capacityProviders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for n in ["FARGATE", "FARGATE_SPOT", "spot-pool", "steady-pool"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let (status, e) = g
        .call(
            "DeleteCapacityProvider",
            json!({"capacityProvider": "spot-pool"}),
        )
        .await;
    assert_eq!(
        (status, e["__type"].as_str()),
        (400, Some("ResourceInUseException"))
    );
    let (status, _) = g
        .call(
            "PutClusterCapacityProviders",
            json!({"cluster": "default", "capacityProviders": ["steady-pool"],
        "defaultCapacityProviderStrategy": [{"capacityProvider": "steady-pool", "weight": 1}]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, v) = g
        .call(
            "DeleteCapacityProvider",
            json!({"capacityProvider": "spot-pool"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["capacityProvider"]["status"], "INACTIVE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_serving_ec2_and_fargate_keeps_one_ledger() {
    let g = Arc::new(InProcess::new().await);
    assert_eq!(g.call("CreateCluster", json!({})).await.0, 200);
    let (status, v) = g
        .agent("/agent/v1/register", json!({"cluster": "default", "hostname": "h1", "attributes": [], "versionInfo": {},
            "capacity": "both",
            "totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 4096}, {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = g
        .call("RegisterTaskDefinition", json!({"family": "both", "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "requiresCompatibilities": ["EC2", "FARGATE"], "containerDefinitions": [{"name": "c", "image": "x"}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let td = v["taskDefinition"]["taskDefinitionArn"].clone();
    let net = json!({"awsvpcConfiguration": {"subnets": ["subnet-a"]}});
    let (status, v) = g
        .call(
            "RunTask",
            json!({"taskDefinition": td, "launchType": "FARGATE", "networkConfiguration": net}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tasks"].as_array().map(|t| t.len()), Some(1), "{v}");
    // The Fargate task's 512 MiB count against the instance: only one EC2 task still fits.
    let (status, v) = g
        .call("RunTask", json!({"taskDefinition": td, "launchType": "EC2", "count": 2, "networkConfiguration": net}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tasks"].as_array().map(|t| t.len()), Some(1), "{v}");
    assert_eq!(v["failures"][0]["reason"], "RESOURCE:MEMORY", "{v}");
    // And the host is full for Fargate too.
    let (_, v) = g
        .call(
            "RunTask",
            json!({"taskDefinition": td, "launchType": "FARGATE", "networkConfiguration": net}),
        )
        .await;
    assert_eq!(v["tasks"], json!([]), "{v}");
    let (_, d) = g.call("ListContainerInstances", json!({})).await;
    let (_, d) = g
        .call(
            "DescribeContainerInstances",
            json!({"containerInstances": d["containerInstanceArns"]}),
        )
        .await;
    let remaining = d["containerInstances"][0]["remainingResources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "MEMORY")
        .map(|r| r["integerValue"].clone());
    assert_eq!(remaining, Some(json!(0)), "{d}");
}
