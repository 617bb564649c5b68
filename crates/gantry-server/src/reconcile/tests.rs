//! The reconcile rules ECS defines, on a fake clock.

use super::liveness::{self, InstanceView};
use super::service::{
    self, breaker_threshold, deployment_bounds, throttle_delay, Launch, LbHealth, ServiceView,
    TaskView,
};
use super::{housekeeping, Timing};
use crate::state::{ServiceRecord, TaskRecord, TaskState};
use gantry_api::model::*;
use gantry_core::{Clock, FakeClock};

const T0: f64 = 1_700_000_000.0;

fn timing() -> Timing {
    Timing {
        healthy_after: 40.0,
        throttle_base: 10.0,
        throttle_cap: 900.0,
        agent_timeout: 30.0,
        lost_timeout: 600.0,
        lost_grace: 60.0,
        task_retention: 3600.0,
    }
}

fn deployment(id: &str, status: &str, td: &str) -> Deployment {
    Deployment {
        id: Some(id.into()),
        status: Some(status.into()),
        task_definition: Some(td.into()),
        rollout_state: Some(DeploymentRolloutState::InProgress),
        failed_tasks: Some(0),
        ..Default::default()
    }
}

fn service(desired: i32, deployments: Vec<Deployment>) -> ServiceRecord {
    ServiceRecord {
        cluster: "c".into(),
        name: "web".into(),
        service: Service {
            service_name: Some("web".into()),
            status: Some("ACTIVE".into()),
            desired_count: Some(desired),
            deployments: Some(deployments),
            ..Default::default()
        },
        last_completed: None,
        start_failures: 0,
        next_launch_at: 0.0,
        steady: false,
        former_load_balancers: Vec::new(),
        former_registries: Vec::new(),
    }
}

fn task(id: &str, dep: &str, status: TaskState, instance: &str) -> TaskRecord {
    TaskRecord {
        cluster: "c".into(),
        id: id.into(),
        instance: instance.into(),
        task: Task {
            task_arn: Some(format!("arn:aws:ecs:us-east-1:0:task/c/{id}")),
            last_status: Some(status.as_str().into()),
            desired_status: Some(
                if status == TaskState::Stopped {
                    "STOPPED"
                } else {
                    "RUNNING"
                }
                .into(),
            ),
            started_at: Some(T0 - 100.0),
            created_at: Some(T0 - 120.0),
            connectivity: Some(Connectivity::Connected),
            ..Default::default()
        },
        demand_cpu: 0,
        demand_memory: 0,
        demand_gpu: 0,
        demand_ports: Vec::new(),
        client_token: None,
        security_groups: Vec::new(),
        service: Some(("web".into(), dep.into())),
        healthy_at: Some(T0 - 50.0),
        counted: false,
        draining: None,
    }
}

fn views(tasks: &[TaskRecord]) -> Vec<TaskView<'_>> {
    tasks
        .iter()
        .map(|t| TaskView {
            rec: t,
            has_health_check: false,
            instance_active: true,
            lb: None,
            draining: false,
        })
        .collect()
}

fn step(rec: &ServiceRecord, tasks: &[TaskRecord], now: f64) -> service::ServiceStep {
    service::step(
        &ServiceView {
            rec,
            tasks: views(tasks),
            daemon_eligible: Vec::new(),
        },
        now,
        &timing(),
    )
}

fn launched(s: &service::ServiceStep) -> usize {
    s.launches
        .iter()
        .map(|l| match l {
            Launch::Replica { count, .. } => *count,
            Launch::Daemon { instances, .. } => instances.len(),
        })
        .sum()
}

#[test]
fn percent_bounds_round_minimum_up_and_maximum_down() {
    assert_eq!(deployment_bounds(3, 50, 150), (2, 4));
    assert_eq!(deployment_bounds(3, 100, 200), (3, 6));
    assert_eq!(deployment_bounds(5, 33, 133), (2, 6));
    assert_eq!(deployment_bounds(0, 100, 200), (0, 0));
    assert_eq!(deployment_bounds(-1, 100, 200), (0, 0));
}

#[test]
fn a_rolling_deployment_stays_within_min_and_max() {
    // 3 old tasks RUNNING; a new PRIMARY deployment; min 50 % (2), max 150 % (4).
    let mut rec = service(
        3,
        vec![
            deployment("new", "PRIMARY", "web:2"),
            deployment("old", "ACTIVE", "web:1"),
        ],
    );
    rec.service.deployment_configuration = Some(DeploymentConfiguration {
        minimum_healthy_percent: Some(50),
        maximum_percent: Some(150),
        ..Default::default()
    });
    let tasks: Vec<TaskRecord> = (0..3)
        .map(|i| task(&format!("o{i}"), "old", TaskState::Running, "i1"))
        .collect();
    let s = step(&rec, &tasks, T0);
    // One old task may go (3 available, 2 must stay); then 2 run and 4 may: 2 new ones start.
    assert_eq!(s.stops.len(), 1, "{:?}", s.stops);
    assert_eq!(launched(&s), 2);
    assert!(s.stops[0].1.contains("deployment new"));

    // With the default 100/200: nothing old goes before new ones are healthy; 3 start.
    rec.service.deployment_configuration = None;
    let s = step(&rec, &tasks, T0);
    assert!(s.stops.is_empty());
    assert_eq!(launched(&s), 3);
}

#[test]
fn new_tasks_count_once_healthy_then_old_ones_drain() {
    let rec = service(
        2,
        vec![
            deployment("new", "PRIMARY", "web:2"),
            deployment("old", "ACTIVE", "web:1"),
        ],
    );
    let clock = FakeClock::at(T0);
    let mut tasks = vec![
        task("o1", "old", TaskState::Running, "i1"),
        task("o2", "old", TaskState::Running, "i1"),
        task("n1", "new", TaskState::Running, "i1"),
        task("n2", "new", TaskState::Running, "i1"),
    ];
    for t in &mut tasks[2..] {
        t.healthy_at = None;
        t.task.started_at = Some(clock.now());
    }
    // Not yet healthy (40 s rule): the old ones stay.
    clock.advance(39.0);
    let s = step(&rec, &tasks, clock.now());
    assert!(s.healthy.is_empty() && s.stops.is_empty(), "{:?}", s.stops);
    clock.advance(1.0);
    let s = step(&rec, &tasks, clock.now());
    assert_eq!(s.healthy.len(), 2);
    assert_eq!(
        s.stops.len(),
        2,
        "both old tasks go once two new ones are healthy"
    );
    assert!(s.service.service.events.as_ref().unwrap()[0]
        .message
        .as_deref()
        .unwrap()
        .contains("has stopped 2 running tasks"));
}

#[test]
fn behind_a_load_balancer_tasks_count_healthy_with_their_targets_and_drain_before_they_go() {
    let rec = service(2, vec![deployment("d1", "PRIMARY", "td:1")]);
    let mut fresh = task("new", "d1", TaskState::Running, "i1");
    fresh.healthy_at = None;
    let old = task("old", "d1", TaskState::Running, "i1");
    let tasks = [fresh, old];
    let with = |lb: [Option<LbHealth<'static>>; 2], draining: [bool; 2]| {
        let tv: Vec<TaskView<'_>> = tasks
            .iter()
            .zip(lb.into_iter().zip(draining))
            .map(|(t, (lb, draining))| TaskView {
                rec: t,
                has_health_check: false,
                instance_active: true,
                lb,
                draining,
            })
            .collect();
        service::step(
            &ServiceView {
                rec: &rec,
                tasks: tv,
                daemon_eligible: Vec::new(),
            },
            T0,
            &timing(),
        )
    };
    // RUNNING for long past healthy_after, but its target is still initial: not healthy.
    let s = with(
        [Some(LbHealth::Pending), Some(LbHealth::Healthy)],
        [false; 2],
    );
    assert!(s.healthy.is_empty());
    let s = with(
        [Some(LbHealth::Healthy), Some(LbHealth::Healthy)],
        [false; 2],
    );
    assert_eq!(s.healthy, vec!["new".to_string()]);
    // A failing target stops its task (past the grace period), with ECS's reason.
    let s = with(
        [Some(LbHealth::Unhealthy("tg/web")), Some(LbHealth::Healthy)],
        [false; 2],
    );
    assert_eq!(
        s.stops,
        vec![(
            "new".to_string(),
            "Task failed ELB health checks in (target-group tg/web)".to_string()
        )]
    );
    // A draining task no longer counts: a replacement starts.
    let s = with(
        [Some(LbHealth::Healthy), Some(LbHealth::Healthy)],
        [false, true],
    );
    assert_eq!(launched(&s), 1);
    assert!(s.stops.is_empty());
}

#[test]
fn circuit_breaker_threshold_is_half_within_3_and_200() {
    assert_eq!(breaker_threshold(1), 3);
    assert_eq!(breaker_threshold(4), 3);
    assert_eq!(breaker_threshold(7), 4);
    assert_eq!(breaker_threshold(10), 5);
    assert_eq!(breaker_threshold(1000), 200);
}

#[test]
fn the_breaker_fails_the_deployment_and_rolls_back() {
    let mut d = deployment("new", "PRIMARY", "web:2");
    d.failed_tasks = Some(2);
    let mut rec = service(4, vec![d, deployment("old", "ACTIVE", "web:1")]);
    rec.last_completed = Some("arn:aws:ecs:us-east-1:0:task-definition/web:1".into());
    rec.service.deployment_configuration = Some(DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: true,
            rollback: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    // A third task of the new deployment stops before it was ever healthy: threshold 3.
    let mut crashed = task("n3", "new", TaskState::Stopped, "i1");
    crashed.healthy_at = None;
    crashed.task.stop_code = Some(TaskStopCode::EssentialContainerExited);
    let s = step(&rec, &[crashed.clone()], T0);
    assert_eq!(s.counted, ["n3"]);
    let ds = s.service.service.deployments.as_ref().unwrap();
    // The failed deployment has no task left, so it leaves the list at once.
    assert!(ds.iter().all(|d| d.id.as_deref() != Some("new")));
    let primary = ds
        .iter()
        .find(|d| d.status.as_deref() == Some("PRIMARY"))
        .unwrap();
    assert_eq!(
        primary.task_definition.as_deref(),
        Some("arn:aws:ecs:us-east-1:0:task-definition/web:1")
    );
    let events: Vec<&str> = s
        .service
        .service
        .events
        .iter()
        .flatten()
        .filter_map(|e| e.message.as_deref())
        .collect();
    assert!(
        events
            .iter()
            .any(|m| m.contains("deployment failed: tasks failed to start")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|m| m.contains("rolling back to deployment")),
        "{events:?}"
    );
    // The rollback's tasks start at once: a new deployment resets the throttle.
    assert_eq!(s.service.start_failures, 0);
    assert_eq!(launched(&s), 4);
    assert!(
        matches!(&s.launches[0], Launch::Replica { task_definition, .. } if task_definition.ends_with("web:1"))
    );

    // Without rollback the deployment just fails, and nothing more is launched.
    rec.service.deployment_configuration = Some(DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: true,
            rollback: false,
            ..Default::default()
        }),
        ..Default::default()
    });
    let s = step(&rec, &[crashed.clone()], T0);
    let ds = s.service.service.deployments.as_ref().unwrap();
    assert_eq!(ds[0].rollout_state, Some(DeploymentRolloutState::Failed));
    assert!(s.launches.is_empty());

    // A task the scheduler itself stopped does not count.
    crashed.task.stop_code = Some(TaskStopCode::ServiceSchedulerInitiated);
    let s = step(&rec, &[crashed], T0);
    let ds = s.service.service.deployments.as_ref().unwrap();
    assert_eq!(ds[0].failed_tasks, Some(2));
    assert_eq!(
        ds[0].rollout_state,
        Some(DeploymentRolloutState::InProgress)
    );
}

#[test]
fn the_throttle_doubles_up_to_its_cap() {
    assert_eq!(throttle_delay(1, 10.0, 900.0), 10.0);
    assert_eq!(throttle_delay(2, 10.0, 900.0), 20.0);
    assert_eq!(throttle_delay(4, 10.0, 900.0), 80.0);
    assert_eq!(throttle_delay(7, 10.0, 900.0), 640.0);
    assert_eq!(throttle_delay(8, 10.0, 900.0), 900.0);
    assert_eq!(throttle_delay(1000, 10.0, 900.0), 900.0);

    let clock = FakeClock::at(T0);
    let mut rec = service(1, vec![deployment("d", "PRIMARY", "web:1")]);
    for n in 1..=3u32 {
        let mut t = task(&format!("t{n}"), "d", TaskState::Stopped, "i1");
        t.healthy_at = None;
        let s = step(&rec, &[t], clock.now());
        assert_eq!(s.service.start_failures, n);
        assert_eq!(
            s.service.next_launch_at,
            clock.now() + 10.0 * 2f64.powi(n as i32 - 1)
        );
        // Within the delay nothing starts; after it, the replacement does.
        assert!(s.launches.is_empty());
        rec = s.service;
        let s = step(&rec, &[], rec.next_launch_at - 0.001);
        assert!(s.launches.is_empty());
        clock.set(rec.next_launch_at);
        let s = step(&rec, &[], clock.now());
        assert_eq!(launched(&s), 1);
    }
    let events: Vec<&str> = rec
        .service
        .events
        .iter()
        .flatten()
        .filter_map(|e| e.message.as_deref())
        .collect();
    assert!(
        events[0].contains("unable to consistently start tasks successfully"),
        "{events:?}"
    );
    // A task that becomes healthy resets it.
    let mut ok = task("ok", "d", TaskState::Running, "i1");
    ok.healthy_at = None;
    ok.task.started_at = Some(clock.now() - 40.0);
    let s = step(&rec, &[ok], clock.now());
    assert_eq!(
        (s.service.start_failures, s.service.next_launch_at),
        (0, 0.0)
    );
}

#[test]
fn daemons_follow_instances_that_join_and_drain() {
    let mut rec = service(0, vec![deployment("d", "PRIMARY", "web:1")]);
    rec.service.scheduling_strategy = Some(SchedulingStrategy::Daemon);
    let tasks = vec![
        task("a", "d", TaskState::Running, "i-a"),
        task("c", "d", TaskState::Running, "i-c"),
    ];
    // i-b joined; i-c was drained (no longer eligible).
    let s = service::step(
        &ServiceView {
            rec: &rec,
            tasks: views(&tasks),
            daemon_eligible: vec!["i-a".into(), "i-b".into()],
        },
        T0,
        &timing(),
    );
    assert_eq!(s.service.service.desired_count, Some(2));
    assert_eq!(
        s.launches,
        [Launch::Daemon {
            deployment: "d".into(),
            task_definition: "web:1".into(),
            instances: vec!["i-b".into()]
        }]
    );
    assert_eq!(
        s.stops.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["c"]
    );
}

#[test]
fn replicas_on_a_draining_instance_are_replaced() {
    let rec = service(1, vec![deployment("d", "PRIMARY", "web:1")]);
    let tasks = [task("t", "d", TaskState::Running, "i1")];
    let view = ServiceView {
        rec: &rec,
        tasks: vec![TaskView {
            rec: &tasks[0],
            has_health_check: false,
            instance_active: false,
            lb: None,
            draining: false,
        }],
        daemon_eligible: Vec::new(),
    };
    let s = service::step(&view, T0, &timing());
    // The replacement starts first (100 % minimum healthy), the drained task goes after.
    assert_eq!(launched(&s), 1);
    assert!(s.stops.is_empty());
}

#[test]
fn a_steady_service_completes_its_deployment_once() {
    let rec = service(2, vec![deployment("d", "PRIMARY", "web:1")]);
    let tasks = [
        task("a", "d", TaskState::Running, "i1"),
        task("b", "d", TaskState::Running, "i1"),
    ];
    let s = step(&rec, &tasks, T0);
    assert!(s.service.steady);
    assert_eq!(s.service.last_completed.as_deref(), Some("web:1"));
    let d = &s.service.service.deployments.as_ref().unwrap()[0];
    assert_eq!(d.rollout_state, Some(DeploymentRolloutState::Completed));
    let again = step(&s.service, &tasks, T0 + 1.0);
    assert_eq!(
        again.service.service.events.as_ref().map(Vec::len),
        s.service.service.events.as_ref().map(Vec::len)
    );
}

#[test]
fn lost_hosts_disconnect_then_stop_then_count_as_stopped() {
    let t = timing();
    let clock = FakeClock::at(T0);
    let last_seen = clock.now();
    let tasks = [task("x", "d", TaskState::Running, "i1")];
    let at = |now: f64| {
        let v = [InstanceView {
            arn: "arn:aws:ecs:us-east-1:0:container-instance/c/i1",
            connected: liveness::connected(true, 0, last_seen, now, &t),
            last_seen,
            tasks: tasks.iter().collect(),
        }];
        liveness::step(&v, now, &t)
    };
    clock.advance(30.0);
    assert!(
        at(clock.now()).is_empty(),
        "within the agent timeout nothing changes"
    );
    clock.advance(0.5);
    let c = at(clock.now());
    assert_eq!(
        c[0].task.task.connectivity,
        Some(Connectivity::Disconnected)
    );
    assert_eq!(c[0].task.desired_status(), "RUNNING");
    clock.set(T0 + 600.5);
    let c = at(clock.now());
    assert_eq!(c[0].task.desired_status(), "STOPPED");
    assert_eq!(
        c[0].task.task.stop_code,
        Some(TaskStopCode::ServiceSchedulerInitiated)
    );
    assert!(c[0]
        .task
        .task
        .stopped_reason
        .as_deref()
        .unwrap()
        .contains("container-instance/c/i1 was lost"));
    assert_eq!(c[0].task.state(), TaskState::Running);
    // The grace runs from the stop request.
    let mut stopping = c[0].task.clone();
    stopping.task.connectivity = Some(Connectivity::Disconnected);
    let v = |now: f64, t2: &TaskRecord| {
        liveness::step(
            &[InstanceView {
                arn: "i1",
                connected: false,
                last_seen,
                tasks: vec![t2],
            }],
            now,
            &t,
        )
    };
    assert!(v(T0 + 660.0, &stopping).is_empty());
    let c = v(T0 + 661.0, &stopping);
    assert_eq!(c[0].task.state(), TaskState::Stopped);
    assert_eq!(c[0].was, TaskState::Running);
    // A connected agent's tasks are left alone; an open poll counts as connected.
    assert!(liveness::connected(true, 1, 0.0, T0, &t));
    assert!(!liveness::connected(false, 1, T0, T0, &t));
}

#[test]
fn stopped_tasks_expire_after_the_retention() {
    let mut old = task("old", "d", TaskState::Stopped, "i1");
    old.task.stopped_at = Some(T0 - 3601.0);
    let mut recent = task("recent", "d", TaskState::Stopped, "i1");
    recent.task.stopped_at = Some(T0 - 3599.0);
    let running = task("running", "d", TaskState::Running, "i1");
    assert_eq!(
        housekeeping::expired([&old, &recent, &running], T0, &timing()),
        ["old"]
    );
}

#[test]
fn task_states_are_ordered_as_ecs_defines() {
    let names: Vec<&str> = TaskState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "PROVISIONING",
            "PENDING",
            "ACTIVATING",
            "RUNNING",
            "DEACTIVATING",
            "STOPPING",
            "DEPROVISIONING",
            "STOPPED"
        ]
    );
    assert!(
        TaskState::Activating < TaskState::Running && TaskState::Deactivating < TaskState::Stopping
    );
    assert_eq!(TaskState::parse("RUNNING"), Some(TaskState::Running));
    assert_eq!(TaskState::parse("running"), None);
}

mod registries {
    use super::*;
    use crate::reconcile::registries::{plan, ECS_CLUSTER, ECS_SERVICE};
    use std::collections::BTreeMap;

    fn awsvpc(id: &str, ip: &str, status: TaskState) -> TaskRecord {
        let mut t = task(id, "d1", status, "i1");
        t.task.attachments = Some(vec![Attachment {
            details: Some(vec![KeyValuePair {
                name: Some("privateIPv4Address".into()),
                value: Some(ip.into()),
            }]),
            ..Default::default()
        }]);
        t.task.task_definition_arn = Some("arn:aws:ecs:us-east-1:0:task-definition/web:3".into());
        t
    }

    fn registry(port: Option<i32>) -> ServiceRegistry {
        ServiceRegistry {
            registry_arn: Some("arn:srv".into()),
            port,
            ..Default::default()
        }
    }

    #[test]
    fn serving_tasks_are_registered_and_the_rest_deregistered() {
        let rec = service(2, Vec::new());
        let mut draining = awsvpc("t3", "10.0.0.3", TaskState::Running);
        draining.draining = Some((T0, "scale-in".into()));
        let tasks = [
            awsvpc("t1", "10.0.0.1", TaskState::Running),
            awsvpc("t2", "10.0.0.2", TaskState::Pending),
            draining,
        ];
        let p = plan(
            &rec,
            &registry(Some(8080)),
            tasks.iter(),
            &[],
            "us-east-1",
            None,
        );
        assert_eq!(p.register.len(), 1);
        let (id, a) = &p.register[0];
        assert_eq!(id, "t1");
        assert_eq!(a["AWS_INSTANCE_IPV4"], "10.0.0.1");
        assert_eq!(a["AWS_INSTANCE_PORT"], "8080");
        assert_eq!(a["ECS_TASK_DEFINITION_FAMILY"], "web");
        assert_eq!(
            (a[ECS_CLUSTER].as_str(), a[ECS_SERVICE].as_str()),
            ("c", "web")
        );

        // Registered already, as wanted: nothing to do. t3 (draining) and a forgotten task of
        // the service go; another service's instance, or one registered by hand, stays.
        let ours = |id: &str| {
            let mut a = p.register[0].1.clone();
            if id != "t1" {
                a.insert("AWS_INSTANCE_IPV4".into(), "10.0.0.9".into());
            }
            (id.to_string(), a)
        };
        let mut other = BTreeMap::new();
        other.insert(ECS_SERVICE.to_string(), "api".to_string());
        other.insert(ECS_CLUSTER.to_string(), "c".to_string());
        let held = vec![
            ours("t1"),
            ours("t3"),
            ours("gone"),
            ("api-1".to_string(), other),
            ("manual".to_string(), BTreeMap::new()),
        ];
        let p = plan(
            &rec,
            &registry(Some(8080)),
            tasks.iter(),
            &held,
            "us-east-1",
            None,
        );
        assert!(p.register.is_empty());
        assert_eq!(p.deregister, ["t3", "gone"]);
    }

    #[test]
    fn bridge_tasks_use_the_host_address_and_their_bound_port() {
        let rec = service(1, Vec::new());
        let mut t = task("b1", "d1", TaskState::Running, "i1");
        t.task.containers = Some(vec![Container {
            name: Some("web".into()),
            network_bindings: Some(vec![NetworkBinding {
                container_port: Some(80),
                host_port: Some(32768),
                ..Default::default()
            }]),
            ..Default::default()
        }]);
        let reg = ServiceRegistry {
            registry_arn: Some("arn:srv".into()),
            container_name: Some("web".into()),
            container_port: Some(80),
            ..Default::default()
        };
        let none = plan(&rec, &reg, std::iter::once(&t), &[], "r", None);
        assert!(none.register.is_empty(), "no host address: not registered");
        let p = plan(
            &rec,
            &reg,
            std::iter::once(&t),
            &[],
            "r",
            Some("172.17.0.1"),
        );
        let a = &p.register[0].1;
        assert_eq!(
            (
                a["AWS_INSTANCE_IPV4"].as_str(),
                a["AWS_INSTANCE_PORT"].as_str()
            ),
            ("172.17.0.1", "32768")
        );
    }
}
