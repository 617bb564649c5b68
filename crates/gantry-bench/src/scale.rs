//! `gantry-bench scale`: RunTask end to end at 1,000 simulated instances. A task counts once
//! RunTask has returned it (after its durable commit). Side by side, in the same run, moto's
//! server places the same RunTask calls on as many registered container instances.

use crate::{gantry_bin, start_moto, Target};
use gantry_testkit::{signed_headers, temp_dir, Background, GantryProcess};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// moto's server command; give "" to skip the baseline
    #[arg(long, default_value = "moto_server")]
    moto_bin: String,
    /// Python with boto3, to set up moto's EC2 and container instances
    #[arg(long, default_value = "python3")]
    python: String,
    /// Simulated container instances
    #[arg(long, default_value_t = 1000)]
    instances: usize,
    /// Seconds of RunTask load per server
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Concurrent client connections
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Tasks per RunTask call
    #[arg(long, default_value_t = 10)]
    count: usize,
}

async fn call(
    client: &reqwest::Client,
    t: &Target,
    op: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value)> {
    let body = serde_json::to_vec(body)?;
    let host = t.endpoint.trim_start_matches("http://");
    let headers = signed_headers(
        host,
        &t.access_key_id,
        &t.secret_access_key,
        "us-east-1",
        op,
        &body,
    );
    let mut req = client.post(format!("{}/", t.endpoint)).body(body);
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        req = req.header(k, v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let v = serde_json::from_slice(&resp.bytes().await?).unwrap_or(Value::Null);
    Ok((status, v))
}

async fn load(t: Arc<Target>, args: &Args) -> (usize, usize, f64) {
    let tasks = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (t, tasks, calls, count) = (t.clone(), tasks.clone(), calls.clone(), args.count);
        set.spawn(async move {
            let client = reqwest::Client::new();
            let body = json!({"cluster": "default", "taskDefinition": "scale", "count": count});
            while Instant::now() < deadline {
                if let Ok((200, v)) = call(&client, &t, "RunTask", &body).await {
                    tasks.fetch_add(
                        v["tasks"].as_array().map_or(0, |a| a.len()),
                        Ordering::Relaxed,
                    );
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while set.join_next().await.is_some() {}
    (
        tasks.load(Ordering::Relaxed),
        calls.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

/// Creates the cluster, EC2 instances, container instances and the task definition in moto.
const MOTO_SETUP: &str = r#"
import boto3, json, sys
endpoint, n, td = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ecs, ec2 = boto3.client("ecs", **kw), boto3.client("ec2", **kw)
ami = ec2.describe_images()["Images"][0]["ImageId"]
ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, MinCount=n, MaxCount=n)["Instances"]]
ecs.create_cluster(clusterName="default")
for iid in ids:
    ecs.register_container_instance(cluster="default", instanceIdentityDocument=json.dumps({"instanceId": iid, "region": "us-east-1"}),
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 4096}, {"name": "MEMORY", "type": "INTEGER", "integerValue": 16384}])
ecs.register_task_definition(**td)
"#;

const TASK_DEFINITION: &str = r#"{"family":"scale","containerDefinitions":[{"name":"m","image":"busybox","memory":16,"cpu":1}]}"#;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let bin = gantry_bin(args.gantry_bin.clone())?;
    let dir = temp_dir("bench-scale");
    let server = GantryProcess::start(&bin, &dir.join("server")).await;
    server.call("CreateCluster", "{}").await;
    let token = server.join_token();
    let n = args.instances.to_string();
    let sim_dir = dir.join("sim").display().to_string();
    let _sim = Background::spawn(
        &bin,
        &[
            "sim",
            "--server",
            &server.endpoint(),
            "--join-token",
            &token,
            "--instances",
            &n,
            "--data-dir",
            &sim_dir,
        ],
    );
    let started = Instant::now();
    loop {
        let (_, v) = server.call("ListContainerInstances", "{}").await;
        let mut total = v["containerInstanceArns"].as_array().map_or(0, |a| a.len());
        let mut token = v["nextToken"].as_str().map(String::from);
        while let Some(t) = token {
            let (_, v) = server
                .call(
                    "ListContainerInstances",
                    &json!({"nextToken": t}).to_string(),
                )
                .await;
            total += v["containerInstanceArns"].as_array().map_or(0, |a| a.len());
            token = v["nextToken"].as_str().map(String::from);
        }
        if total >= args.instances {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "only {total} instances registered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.call("RegisterTaskDefinition", TASK_DEFINITION).await;
    let gantry = Arc::new(Target {
        name: "gantry",
        endpoint: server.endpoint(),
        access_key_id: server.access_key_id.clone(),
        secret_access_key: server.secret_access_key.clone(),
    });
    println!(
        "RunTask at {} instances: {} connections, count={} per call, {} s; a task counts once RunTask returned it",
        args.instances, args.concurrency, args.count, args.seconds
    );
    println!(
        "{:<8} {:>10} {:>10} {:>10} {:>12}",
        "server", "calls", "tasks", "seconds", "tasks/s"
    );
    let (tasks, calls, secs) = load(gantry, &args).await;
    println!(
        "{:<8} {calls:>10} {tasks:>10} {secs:>10.1} {:>12.0}",
        "gantry",
        tasks as f64 / secs
    );
    // Stop gantry and its simulated instances before measuring the baseline.
    drop(_sim);
    drop(server);

    if !args.moto_bin.is_empty() {
        let (_moto, endpoint) = start_moto(&args.moto_bin).await?;
        let moto = Arc::new(Target {
            name: "moto",
            endpoint,
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
        });
        // moto registers a container instance only for an EC2 instance it knows: make them with
        // boto3 (which moto[server] installs), then drive RunTask exactly as for gantry.
        let status = std::process::Command::new(&args.python)
            .args([
                "-c",
                MOTO_SETUP,
                &moto.endpoint,
                &args.instances.to_string(),
                TASK_DEFINITION,
            ])
            .status()?;
        anyhow::ensure!(status.success(), "setting up moto failed");
        let (tasks, calls, secs) = load(moto, &args).await;
        println!(
            "{:<8} {calls:>10} {tasks:>10} {secs:>10.1} {:>12.0}",
            "moto",
            tasks as f64 / secs
        );
    }
    Ok(())
}
