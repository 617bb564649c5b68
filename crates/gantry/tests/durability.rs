//! Acknowledged writes survive `kill -9` of the server.

use gantry_testkit::{signed_call, temp_dir, GantryProcess};
use std::collections::BTreeMap;

const N: usize = 200;

/// Every acknowledged registration (ARN → the value of its one environment variable) is there,
/// with its content.
async fn all_came_back(gantry: &GantryProcess, acked: &BTreeMap<String, String>) {
    for (arn, value) in acked {
        let (status, v) = gantry
            .call(
                "DescribeTaskDefinition",
                &format!(r#"{{"taskDefinition":"{arn}"}}"#),
            )
            .await;
        assert_eq!(status, 200, "{arn} lost after kill -9: {v}");
        let got = &v["taskDefinition"]["containerDefinitions"][0]["environment"][0]["value"];
        assert_eq!(
            got.as_str(),
            Some(value.as_str()),
            "{arn} came back with other content"
        );
    }
}

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

    let acked: BTreeMap<String, String> =
        acked.into_iter().map(|(a, i)| (a, i.to_string())).collect();
    all_came_back(&gantry, &acked).await;
    // Revisions continue after the restart; none is reused.
    let (_, v) = gantry
        .call("RegisterTaskDefinition", r#"{"family":"durable-0","containerDefinitions":[{"name":"c","image":"busybox","memory":16}]}"#)
        .await;
    assert_eq!(
        v["taskDefinition"]["revision"].as_i64(),
        Some((N / 4 + 1) as i64)
    );
}

/// `kill -9` while writes are in flight: every write that was acknowledged survives, and none
/// is half applied. Each RegisterTaskDefinition writes two records (the revision and its
/// family's counter) in one transaction; a half-applied one would show as a revision the
/// counter does not cover, and the next registration would reuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_writes_are_in_flight_loses_nothing_acknowledged() {
    use std::sync::{Arc, Mutex};
    let dir = temp_dir("durability-inflight");
    let mut gantry = GantryProcess::start(env!("CARGO_BIN_EXE_gantry").as_ref(), &dir).await;
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..16 {
        let (endpoint, ak, sk, region) = (
            gantry.endpoint(),
            gantry.access_key_id.clone(),
            gantry.secret_access_key.clone(),
            gantry.region.clone(),
        );
        let (acked, stop) = (acked.clone(), stop.clone());
        writers.spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let value = format!("w{w}-{n}");
                n += 1;
                let body = format!(
                    r#"{{"family":"inflight-{}","containerDefinitions":[{{"name":"c","image":"busybox","memory":16,"environment":[{{"name":"V","value":"{value}"}}]}}]}}"#,
                    w % 4
                );
                match gantry_testkit::try_signed_call(&endpoint, &ak, &sk, &region, "RegisterTaskDefinition", body.as_bytes()).await {
                    Some((200, v)) => {
                        let arn = v["taskDefinition"]["taskDefinitionArn"].as_str().unwrap().to_string();
                        assert!(acked.lock().unwrap().insert(arn, value).is_none(), "a revision was issued twice");
                    }
                    // The server is gone: this write's fate is unknown, and nothing more is sent.
                    None => return,
                    Some((status, v)) => panic!("{status}: {v}"),
                }
            }
        });
    }
    // Let the writers get going, then kill the server under them.
    gantry_testkit::wait_for(
        "300 acknowledged writes",
        std::time::Duration::from_secs(60),
        || {
            let n = acked.lock().unwrap().len();
            async move { (n >= 300).then_some(()) }
        },
    )
    .await;
    gantry.kill9();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    // Straight from the store, before the server reads it again: each family's counter covers
    // every revision stored under it (a half-applied registration would break this).
    {
        use gantry_store::Store;
        let store = gantry_store::SqliteStore::open(dir.join("state.db")).unwrap();
        let (defs, _) = store.range("ecs/us-east-1/taskdefs/").await.unwrap();
        let (fams, _) = store.range("ecs/us-east-1/families/").await.unwrap();
        assert!(defs.len() >= acked.len());
        for f in &fams {
            let family = f.key.trim_start_matches("ecs/us-east-1/families/");
            let counter = serde_json::from_slice::<serde_json::Value>(&f.value).unwrap()
                ["last_revision"]
                .as_i64()
                .unwrap();
            let highest = defs
                .iter()
                .filter(|d| {
                    d.key
                        .starts_with(&format!("ecs/us-east-1/taskdefs/{family}/"))
                })
                .map(|d| {
                    serde_json::from_slice::<serde_json::Value>(&d.value).unwrap()
                        ["task_definition"]["revision"]
                        .as_i64()
                        .unwrap()
                })
                .max()
                .unwrap_or(0);
            assert_eq!(counter, highest, "{family}: counter and revisions disagree");
        }
        store.close();
    }
    gantry.restart().await;

    all_came_back(&gantry, &acked).await;
    // No half-applied registration: each family's next revision is past every revision kept,
    // so none is issued twice.
    for f in 0..4 {
        let family = format!("inflight-{f}");
        let (_, v) = gantry
            .call(
                "ListTaskDefinitions",
                &format!(r#"{{"familyPrefix":"{family}","sort":"DESC","maxResults":1}}"#),
            )
            .await;
        let newest: i64 = v["taskDefinitionArns"][0]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let (_, v) = gantry
            .call("RegisterTaskDefinition", &format!(r#"{{"family":"{family}","containerDefinitions":[{{"name":"c","image":"busybox","memory":16}}]}}"#))
            .await;
        assert_eq!(
            v["taskDefinition"]["revision"].as_i64(),
            Some(newest + 1),
            "{family}"
        );
    }
}
