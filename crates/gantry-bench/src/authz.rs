//! The price of policy evaluation: signed DescribeTaskDefinition throughput as the account's
//! root (never evaluated) and as an IAM user with 10 attached managed policies of 10
//! statements each, side by side in one run against one server.

use crate::{gantry_bin, measure, Target};
use anyhow::{bail, Context};
use gantry_testkit::{query_call, temp_dir, xml_text, GantryProcess};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// The gantry binary [default: `gantry` next to this program]
    #[arg(long)]
    gantry_bin: Option<PathBuf>,
    /// Seconds per measurement
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client connections
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Rounds: each measures the root, then the user
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

/// Policy `i`: ten statements over ECS and other services' actions, with resources and
/// conditions as people write them; the last policy's last statement is the one that allows
/// DescribeTaskDefinition, so every statement before it is looked at.
fn policy(i: usize) -> String {
    let account = "000000000000";
    let statements: Vec<serde_json::Value> = (0..10)
        .map(|j| {
            let cluster = format!("arn:aws:ecs:us-east-1:{account}:cluster/team-{i}-{j}");
            match (i, j) {
                (9, 9) => serde_json::json!({
                    "Sid": "Describe", "Effect": "Allow",
                    "Action": ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
                    "Resource": "*"
                }),
                (_, 0) => serde_json::json!({
                    "Effect": "Deny", "Action": "ecs:DeleteCluster", "Resource": cluster
                }),
                (_, j) if j % 3 == 0 => serde_json::json!({
                    "Effect": "Allow",
                    "Action": ["ecs:UpdateService", "ecs:DescribeServices", "ecs:ListTasks"],
                    "Resource": format!("arn:aws:ecs:us-east-1:{account}:service/team-{i}-{j}/*"),
                    "Condition": {"ArnEquals": {"ecs:cluster": cluster}}
                }),
                (_, j) if j % 3 == 1 => serde_json::json!({
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:GetLogEvents"],
                    "Resource": format!("arn:aws:logs:us-east-1:{account}:log-group:/team-{i}-{j}:*")
                }),
                _ => serde_json::json!({
                    "Effect": "Allow",
                    "Action": ["ecs:RunTask", "ecs:StopTask"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:ResourceTag/team": format!("team-{i}-{j}")},
                        "Bool": {"aws:SecureTransport": "false"}
                    }
                }),
            }
        })
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

async fn iam(g: &GantryProcess, params: &[(&str, &str)]) -> anyhow::Result<String> {
    let (status, xml) = query_call(
        &g.endpoint(),
        &g.access_key_id,
        &g.secret_access_key,
        "iam",
        params,
    )
    .await
    .context("calling IAM")?;
    if status != 200 {
        bail!("IAM {:?} answered {status}: {xml}", params.first());
    }
    Ok(xml)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let dir = temp_dir("bench-authz");
    let g = GantryProcess::start(&gantry_bin(args.gantry_bin)?, &dir).await;
    let v = ("Version", "2010-05-08");
    iam(&g, &[("Action", "CreateUser"), v, ("UserName", "bench")]).await?;
    for i in 0..10 {
        let (name, doc) = (format!("bench-{i}"), policy(i));
        iam(
            &g,
            &[
                ("Action", "CreatePolicy"),
                v,
                ("PolicyName", &name),
                ("PolicyDocument", &doc),
            ],
        )
        .await?;
        let arn = format!("arn:aws:iam::000000000000:policy/{name}");
        iam(
            &g,
            &[
                ("Action", "AttachUserPolicy"),
                v,
                ("UserName", "bench"),
                ("PolicyArn", &arn),
            ],
        )
        .await?;
    }
    let key = iam(
        &g,
        &[("Action", "CreateAccessKey"), v, ("UserName", "bench")],
    )
    .await?;
    let (Some(id), Some(secret)) = (
        xml_text(&key, "AccessKeyId"),
        xml_text(&key, "SecretAccessKey"),
    ) else {
        bail!("CreateAccessKey answered no key: {key}");
    };
    let root = Arc::new(Target {
        name: "root",
        endpoint: g.endpoint(),
        access_key_id: g.access_key_id.clone(),
        secret_access_key: g.secret_access_key.clone(),
    });
    let user = Arc::new(Target {
        name: "user",
        endpoint: g.endpoint(),
        access_key_id: id.to_string(),
        secret_access_key: secret.to_string(),
    });
    let (status, _) = g
        .call(
            "RegisterTaskDefinition",
            &String::from_utf8_lossy(&crate::register_body(0)),
        )
        .await;
    if status != 200 {
        bail!("seeding RegisterTaskDefinition answered {status}");
    }
    // Both callers load the server at the same time, half the connections each, so that
    // whatever else the machine does falls on both alike.
    let half = (args.concurrency / 2).max(1);
    println!(
        "DescribeTaskDefinition, {} s per round, {half} connections as the root and {half} as the user at once; user: 10 managed policies x 10 statements",
        args.seconds
    );
    println!(
        "{:<6} {:<6} {:>9} {:>10} {:>9} {:>9} {:>7}",
        "round", "caller", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let (mut root_total, mut user_total) = (0usize, 0usize);
    for round in 1..=args.rounds {
        let (r, u) = tokio::join!(
            measure(root.clone(), "DescribeTaskDefinition", args.seconds, half),
            measure(user.clone(), "DescribeTaskDefinition", args.seconds, half)
        );
        for (t, f) in [(&root, &r), (&user, &u)] {
            println!(
                "{round:<6} {:<6} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                t.name,
                f.requests,
                f.requests as f64 / f.seconds,
                f.p50_ms,
                f.p99_ms,
                f.errors
            );
            if f.errors > 0 {
                bail!("{} got {} errors: is the policy wrong?", t.name, f.errors);
            }
        }
        root_total += r.requests;
        user_total += u.requests;
    }
    println!(
        "all rounds: root {root_total} requests, user {user_total}: the user's throughput is {:.1} % of the root's",
        100.0 * user_total as f64 / root_total.max(1) as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
