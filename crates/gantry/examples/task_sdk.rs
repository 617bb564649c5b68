//! A program that runs inside a task, as an application written for ECS does: the AWS SDK's
//! default chain finds its region, endpoint and credentials in what the agent gives every
//! container (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
//!
//! It asks who it is (STS GetCallerIdentity), lists clusters and tries to create one, and
//! prints one JSON line of what each call answered, for the test that runs it
//! (tests/python/test_task_endpoint.py) to compare with the task role's policy.

use aws_config::BehaviorVersion;

fn outcome<T, E: aws_sdk_ecs::error::ProvideErrorMetadata>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(e) => e.code().unwrap_or("unknown error").to_string(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let sts = aws_sdk_sts::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let caller = match sts.get_caller_identity().send().await {
        Ok(o) => o.arn().unwrap_or_default().to_string(),
        Err(e) => format!("error: {}", aws_sdk_sts::error::DisplayErrorContext(&e)),
    };
    let list = ecs.list_clusters().send().await;
    let create = ecs
        .create_cluster()
        .cluster_name("from-a-task")
        .send()
        .await;
    println!(
        "{{\"caller\": {:?}, \"listClusters\": {:?}, \"createCluster\": {:?}}}",
        caller,
        outcome(list.map_err(|e| e.into_service_error())),
        outcome(create.map_err(|e| e.into_service_error())),
    );
}
