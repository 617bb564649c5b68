//! Active health checks: each target of a group in use, every interval, with the group's
//! timeout, path, port and matcher; outcomes go to the health table.

use super::Upstream;
use crate::health::{code_matches, Outcome, State};
use crate::model::{HealthCheck, Protocol, Resource, Target};
use crate::Elb;
use http_body_util::{BodyExt, Empty};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

async fn check(client: &Upstream, h: &HealthCheck, t: &Target, timeout: Duration) -> Outcome {
    let port = if h.port == "traffic-port" {
        t.port
    } else {
        h.port.parse().unwrap_or(t.port)
    };
    match h.protocol {
        Protocol::Tcp => match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((t.id.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Outcome::Passed,
            Ok(Err(_)) => Outcome::Failed,
            Err(_) => Outcome::Timeout,
        },
        Protocol::Http => {
            let Ok(uri) = format!("http://{}:{port}{}", t.id, h.path).parse::<hyper::Uri>() else {
                return Outcome::Failed;
            };
            let req = hyper::Request::get(uri)
                .header("user-agent", "ELB-HealthChecker/2.0")
                .body(Empty::new().map_err(|e| match e {}).boxed());
            let Ok(req) = req else { return Outcome::Failed };
            let answer = async {
                let r = client.request(req).await.ok()?;
                let code = r.status().as_u16();
                r.into_body().collect().await.ok()?;
                Some(code)
            };
            match tokio::time::timeout(timeout, answer).await {
                Ok(Some(code)) if code_matches(&h.matcher, code) => Outcome::Passed,
                Ok(Some(code)) => Outcome::Code(code),
                Ok(None) => Outcome::Failed,
                Err(_) => Outcome::Timeout,
            }
        }
    }
}

pub(super) async fn run(elb: Arc<Elb>, client: Upstream) {
    let second = elb.settings().second;
    let busy: Arc<Mutex<HashSet<(String, Target)>>> = Arc::default();
    loop {
        let all = elb.snapshot();
        let now = Instant::now();
        let used = crate::model::groups_in_use(&all);
        elb.health().retain_groups(|g| all.contains_key(g));
        for r in all.values() {
            let Resource::Group(g) = r else { continue };
            elb.health()
                .sync(&g.arn, &g.targets, second * g.deregistration_delay(), now);
            if !used.contains(g.arn.as_str()) {
                continue;
            }
            let interval = second * g.health.interval;
            for (t, h) in elb.health().of(&g.arn) {
                if h.state == State::Draining
                    || h.checked.is_some_and(|c| now.duration_since(c) < interval)
                {
                    continue;
                }
                let key = (g.arn.clone(), t.clone());
                {
                    let mut b = match busy.lock() {
                        Ok(b) => b,
                        Err(p) => p.into_inner(),
                    };
                    if !b.insert(key.clone()) {
                        continue;
                    }
                }
                let (elb, client, busy, hc) =
                    (elb.clone(), client.clone(), busy.clone(), g.health.clone());
                tokio::spawn(async move {
                    let outcome = if hc.enabled {
                        check(&client, &hc, &t, second * hc.timeout).await
                    } else {
                        Outcome::Passed
                    };
                    elb.health().observe(
                        &key.0,
                        &t,
                        outcome,
                        (hc.healthy, hc.unhealthy),
                        Instant::now(),
                    );
                    match busy.lock() {
                        Ok(mut b) => b.remove(&key),
                        Err(p) => p.into_inner().remove(&key),
                    };
                });
            }
        }
        tokio::time::sleep(second.min(Duration::from_millis(200)) / 2).await;
    }
}
