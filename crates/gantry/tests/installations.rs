//! Two gantry installations on one Docker engine: their awsvpc subnets never collide, and
//! their containers carry different installation labels.

use gantry_testkit::{
    docker, ensure_busybox_image, remove_labelled, temp_dir, wait_for, AgentProcess, GantryProcess,
    BUSYBOX_IMAGE,
};
use serde_json::{json, Value};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gantry");

struct Installation {
    server: GantryProcess,
    agent: AgentProcess,
    instance: String,
}

impl Installation {
    async fn start(name: &str) -> Installation {
        let dir = temp_dir(name);
        let server = GantryProcess::start(BIN.as_ref(), &dir.join("server")).await;
        server.call("CreateCluster", "{}").await;
        let (agent, instance) = AgentProcess::start_registered(
            BIN.as_ref(),
            &server,
            &dir.join("agent"),
            &[
                "--tick",
                "100ms",
                "--stop-timeout",
                "1s",
                "--pull-behavior",
                "prefer-cached",
            ],
        )
        .await;
        Installation {
            server,
            agent,
            instance,
        }
    }

    async fn run_awsvpc(&self, subnet: &str) -> Value {
        let (_, v) = self
            .server
            .call("RegisterTaskDefinition", &json!({"family": "vpc", "networkMode": "awsvpc", "containerDefinitions": [
                {"name": "web", "image": BUSYBOX_IMAGE, "memory": 16, "command": ["sleep", "300"]}]}).to_string())
            .await;
        let td = v["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, v) = self
            .server
            .call("RunTask", &json!({"taskDefinition": td, "networkConfiguration": {"awsvpcConfiguration": {"subnets": [subnet]}}}).to_string())
            .await;
        assert_eq!(status, 200, "{v}");
        let task = v["tasks"][0]["taskArn"].as_str().unwrap().to_string();
        wait_for(
            &format!("{task} to run"),
            Duration::from_secs(30),
            || async {
                let (_, v) = self
                    .server
                    .call("DescribeTasks", &json!({"tasks": [task]}).to_string())
                    .await;
                let t = v["tasks"][0].clone();
                assert_ne!(t["lastStatus"], "STOPPED", "{t}");
                (t["lastStatus"] == "RUNNING").then_some(t)
            },
        )
        .await
    }
}

impl Drop for Installation {
    fn drop(&mut self) {
        self.agent.kill9();
        std::thread::sleep(Duration::from_millis(500));
        remove_labelled("gantry.container-instance", &self.instance);
        let _ = std::process::Command::new("docker")
            .args(["network", "prune", "-f", "--filter", "label=gantry.subnet"])
            .output();
    }
}

fn address(t: &Value) -> String {
    t["attachments"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_installations_share_an_engine_without_colliding() {
    ensure_busybox_image();
    let subnet = format!("subnet-i{}", std::process::id());
    let first = Installation::start("install-a").await;
    let a = first.run_awsvpc(&subnet).await;
    // A second installation (its own data directory, the same subnet name) while the first's
    // task still holds its range.
    let second = Installation::start("install-b").await;
    let b = second.run_awsvpc(&subnet).await;
    let (ip_a, ip_b) = (address(&a), address(&b));
    let net = |ip: &str| ip.rsplit_once('.').unwrap().0.to_string();
    assert_ne!(net(&ip_a), net(&ip_b), "{ip_a} and {ip_b} share a /24");
    // Each installation labels its containers with its own id.
    let label = |t: &Value| {
        let id = t["containers"][0]["runtimeId"]
            .as_str()
            .unwrap()
            .to_string();
        docker(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"gantry.installation\"}}",
            &id,
        ])
    };
    let (la, lb) = (label(&a), label(&b));
    assert!(
        la.trim().starts_with("gantry-") && lb.trim().starts_with("gantry-"),
        "{la} {lb}"
    );
    assert_ne!(la, lb);
}
