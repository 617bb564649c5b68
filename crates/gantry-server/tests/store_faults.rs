//! What the control plane does when its store misbehaves, and what it keeps in the store.

use gantry_store::{FailingStore, MemStore, Store, Txn};
use gantry_testkit::InProcess;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn a_failed_commit_leaves_memory_as_the_store_has_it() {
    let failing = Arc::new(FailingStore::new(Arc::new(MemStore::new())));
    let g = InProcess::with_store(failing.clone()).await;
    let (s, _) = g
        .call("CreateCluster", json!({"clusterName": "kept"}))
        .await;
    assert_eq!(s, 200);
    let td = json!({"family": "web", "containerDefinitions": [{"name": "c", "image": "i", "memory": 10}]});
    let (s, v) = g.call("RegisterTaskDefinition", td.clone()).await;
    assert_eq!(
        (s, v["taskDefinition"]["revision"].as_i64()),
        (200, Some(1))
    );

    failing.fail_next_commits(1);
    let (s, v) = g
        .call("CreateCluster", json!({"clusterName": "lost"}))
        .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (500, Some("ServerException")),
        "{v}"
    );
    failing.fail_next_commits(1);
    let (s, _) = g.call("RegisterTaskDefinition", td.clone()).await;
    assert_eq!(s, 500);
    failing.fail_next_commits(1);
    let (s, _) = g.call("DeleteCluster", json!({"cluster": "kept"})).await;
    assert_eq!(s, 500);

    // Nothing of the three failed writes is visible.
    let (_, v) = g
        .call("DescribeClusters", json!({"clusters": ["kept", "lost"]}))
        .await;
    assert_eq!(v["clusters"][0]["clusterName"], "kept");
    assert_eq!(v["clusters"][0]["status"], "ACTIVE");
    assert_eq!(v["failures"][0]["reason"], "MISSING", "{v}");
    let (_, v) = g
        .call("DescribeTaskDefinition", json!({"taskDefinition": "web:2"}))
        .await;
    assert_eq!(
        v["__type"], "ClientException",
        "revision 2 must not exist: {v}"
    );

    // And the next writes carry on from what is durable.
    let (s, v) = g.call("RegisterTaskDefinition", td).await;
    assert_eq!(
        (s, v["taskDefinition"]["revision"].as_i64()),
        (200, Some(2))
    );
    let (s, _) = g
        .call("CreateCluster", json!({"clusterName": "lost"}))
        .await;
    assert_eq!(s, 200);
    let (kvs, _) = failing
        .inner()
        .range("ecs/us-east-1/clusters/")
        .await
        .unwrap();
    assert_eq!(kvs.len(), 2);
}

#[tokio::test]
async fn records_live_in_the_regions_namespace_and_old_ones_move_there() {
    let mem: Arc<dyn Store> = Arc::new(MemStore::new());
    // A record as gantry wrote it before namespaces.
    let old = json!({"clusterName": "legacy", "clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/legacy", "status": "ACTIVE"});
    mem.commit(Txn::new().put("clusters/legacy", old.to_string()))
        .await
        .unwrap();
    let g = InProcess::with_store(mem.clone()).await;
    let (_, v) = g
        .call("DescribeClusters", json!({"clusters": ["legacy"]}))
        .await;
    assert_eq!(v["clusters"][0]["clusterName"], "legacy", "{v}");
    g.call("CreateCluster", json!({"clusterName": "fresh"}))
        .await;
    let (all, _) = mem.range("").await.unwrap();
    let keys: Vec<&str> = all.iter().map(|kv| kv.key.as_str()).collect();
    assert!(keys.contains(&"ecs/us-east-1/clusters/legacy"), "{keys:?}");
    assert!(keys.contains(&"ecs/us-east-1/clusters/fresh"), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("clusters/")), "{keys:?}");
}

#[tokio::test]
async fn the_installation_id_is_made_once_per_store() {
    let mem: Arc<dyn Store> = Arc::new(MemStore::new());
    let a = InProcess::with_store(mem.clone()).await;
    let b = InProcess::with_store(mem).await;
    let c = InProcess::new().await;
    assert!(a.server.installation.starts_with("gantry-"));
    assert_eq!(a.server.installation, b.server.installation);
    assert_ne!(a.server.installation, c.server.installation);
}
