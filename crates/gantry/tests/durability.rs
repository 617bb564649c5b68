//! Acknowledged writes survive `kill -9` of the server.

use gantry_testkit::{signed_call, temp_dir, GantryProcess};
use std::collections::BTreeMap;

const N: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registrations_survive_kill_9() {
    let dir = temp_dir("durability");
    let mut gantry = GantryProcess::start(env!("CARGO_BIN_EXE_gantry").as_ref(), &dir).await;

    // Register concurrently, so that writes share group commits, over 4 families.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..N {
        let (endpoint, ak, sk, region) = (
            gantry.endpoint(),
            gantry.access_key_id.clone(),
            gantry.secret_access_key.clone(),
            gantry.region.clone(),
        );
        set.spawn(async move {
            let body = format!(
                r#"{{"family":"durable-{}","containerDefinitions":[{{"name":"c","image":"busybox","memory":16,"environment":[{{"name":"I","value":"{i}"}}]}}]}}"#,
                i % 4
            );
            let (status, v) = signed_call(&endpoint, &ak, &sk, &region, "RegisterTaskDefinition", body.as_bytes()).await;
            assert_eq!(status, 200, "{v}");
            (v["taskDefinition"]["taskDefinitionArn"].as_str().unwrap().to_string(), i)
        });
    }
    let mut acked = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        let (arn, i) = r.unwrap();
        assert!(
            acked.insert(arn, i).is_none(),
            "a revision was issued twice"
        );
    }
    assert_eq!(acked.len(), N);

    gantry.kill9();
    gantry.restart().await;

    for (arn, i) in &acked {
        let (status, v) = gantry
            .call(
                "DescribeTaskDefinition",
                &format!(r#"{{"taskDefinition":"{arn}"}}"#),
            )
            .await;
        assert_eq!(status, 200, "{arn} lost after kill -9: {v}");
        let env = &v["taskDefinition"]["containerDefinitions"][0]["environment"][0]["value"];
        assert_eq!(
            env.as_str(),
            Some(i.to_string().as_str()),
            "{arn} came back with other content"
        );
    }
    // Revisions continue after the restart; none is reused.
    let (_, v) = gantry
        .call("RegisterTaskDefinition", r#"{"family":"durable-0","containerDefinitions":[{"name":"c","image":"busybox","memory":16}]}"#)
        .await;
    assert_eq!(
        v["taskDefinition"]["revision"].as_i64(),
        Some((N / 4 + 1) as i64)
    );
}
