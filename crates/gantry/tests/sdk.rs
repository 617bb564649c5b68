//! The same server driven through the Rust AWS SDK (aws-sdk-ecs).

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{
    ClusterField, ContainerDefinition, NetworkMode, PortMapping, SettingName, SortOrder, Tag,
    TaskDefinitionField, TaskDefinitionStatus,
};
use gantry_testkit::{temp_dir, GantryProcess};

fn client(g: &GantryProcess) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(g.region.clone()))
        .endpoint_url(g.endpoint())
        .credentials_provider(Credentials::new(
            &g.access_key_id,
            &g.secret_access_key,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_round_trips_through_the_rust_sdk() {
    let dir = temp_dir("sdk");
    let g = GantryProcess::start(env!("CARGO_BIN_EXE_gantry").as_ref(), &dir).await;
    let ecs = client(&g);

    // Clusters.
    let c = ecs
        .create_cluster()
        .cluster_name("sdk")
        .tags(tag("team", "a"))
        .send()
        .await
        .unwrap();
    let arn = c.cluster().unwrap().cluster_arn().unwrap().to_string();
    assert_eq!(arn, "arn:aws:ecs:us-east-1:000000000000:cluster/sdk");
    let d = ecs
        .describe_clusters()
        .clusters("sdk")
        .clusters("missing")
        .include(ClusterField::Tags)
        .send()
        .await
        .unwrap();
    assert_eq!(d.clusters()[0].tags()[0].value(), Some("a"));
    assert_eq!(d.failures()[0].reason(), Some("MISSING"));
    let listed: Vec<String> = ecs
        .list_clusters()
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert!(listed.contains(&arn));
    let u = ecs
        .update_cluster_settings()
        .cluster("sdk")
        .settings(
            aws_sdk_ecs::types::ClusterSetting::builder()
                .name(aws_sdk_ecs::types::ClusterSettingName::ContainerInsights)
                .value("enabled")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(u.cluster().unwrap().settings()[0].value(), Some("enabled"));
    ecs.update_cluster().cluster("sdk").send().await.unwrap();

    // Task definitions.
    let web = ContainerDefinition::builder()
        .name("web")
        .image("nginx")
        .memory(100)
        .cpu(99)
        .port_mappings(PortMapping::builder().container_port(80).build())
        .build();
    let r = ecs
        .register_task_definition()
        .family("sdk-web")
        .container_definitions(web.clone())
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .cpu("0.25 vCPU")
        .memory("512")
        .tags(tag("app", "web"))
        .send()
        .await
        .unwrap();
    let td = r.task_definition().unwrap();
    assert_eq!(
        (td.revision(), td.cpu(), td.memory()),
        (1, Some("256"), Some("512"))
    );
    assert_eq!(
        td.container_definitions()[0].port_mappings()[0].host_port(),
        Some(80)
    );
    let r2 = ecs
        .register_task_definition()
        .family("sdk-web")
        .container_definitions(web)
        .send()
        .await
        .unwrap();
    assert_eq!(r2.task_definition().unwrap().revision(), 2);
    let d = ecs
        .describe_task_definition()
        .task_definition("sdk-web:1")
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    assert_eq!(d.tags()[0].key(), Some("app"));
    let latest = ecs
        .describe_task_definition()
        .task_definition("sdk-web")
        .send()
        .await
        .unwrap();
    assert_eq!(latest.task_definition().unwrap().revision(), 2);
    let l = ecs
        .list_task_definitions()
        .family_prefix("sdk-web")
        .sort(SortOrder::Desc)
        .send()
        .await
        .unwrap();
    assert!(l.task_definition_arns()[0].ends_with("sdk-web:2"));
    let fams = ecs
        .list_task_definition_families()
        .family_prefix("sdk-")
        .send()
        .await
        .unwrap();
    assert_eq!(fams.families(), ["sdk-web"]);
    let dr = ecs
        .deregister_task_definition()
        .task_definition("sdk-web:1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        dr.task_definition().unwrap().status(),
        Some(&TaskDefinitionStatus::Inactive)
    );
    let del = ecs
        .delete_task_definitions()
        .task_definitions("sdk-web:1")
        .task_definitions("sdk-web:2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.task_definitions()[0].status(),
        Some(&TaskDefinitionStatus::DeleteInProgress)
    );
    assert_eq!(del.failures().len(), 1, "the ACTIVE revision is refused");

    // Tags.
    ecs.tag_resource()
        .resource_arn(&arn)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    ecs.untag_resource()
        .resource_arn(&arn)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let t = ecs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(t.tags().len(), 1);
    assert_eq!(t.tags()[0].key(), Some("env"));

    // Account settings.
    let s = ecs
        .put_account_setting()
        .name(SettingName::ContainerInsights)
        .value("enabled")
        .send()
        .await
        .unwrap();
    assert_eq!(s.setting().unwrap().value(), Some("enabled"));
    let all = ecs
        .list_account_settings()
        .effective_settings(true)
        .send()
        .await
        .unwrap();
    assert!(
        all.settings()
            .iter()
            .any(|s| s.name() == Some(&SettingName::ContainerInsights)
                && s.value() == Some("enabled"))
    );

    // Errors come back typed.
    let e = ecs
        .delete_cluster()
        .cluster("missing")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_cluster_not_found_exception());
    let e = ecs
        .describe_task_definition()
        .task_definition("nope:9")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_client_exception());

    // Delete the cluster: INACTIVE, still describable, no longer listed.
    let del = ecs.delete_cluster().cluster("sdk").send().await.unwrap();
    assert_eq!(del.cluster().unwrap().status(), Some("INACTIVE"));
    let l = ecs.list_clusters().send().await.unwrap();
    assert!(!l.cluster_arns().contains(&arn));
}
