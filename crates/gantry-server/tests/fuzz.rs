//! Arbitrary JSON bodies (and arbitrary bytes) sent to every operation, signed and through the
//! real router, never produce a 5xx or a panic: only ECS client errors in the AWS error shape,
//! or success.

use gantry_api::model::Operation;
use gantry_testkit::InProcess;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Member names of the operations gantry implements, so that generated bodies reach deep.
const MEMBERS: &[&str] = &[
    "family",
    "containerDefinitions",
    "name",
    "image",
    "memory",
    "memoryReservation",
    "cpu",
    "portMappings",
    "containerPort",
    "hostPort",
    "protocol",
    "containerPortRange",
    "networkMode",
    "requiresCompatibilities",
    "clusterName",
    "clusters",
    "include",
    "cluster",
    "settings",
    "value",
    "tags",
    "key",
    "resourceArn",
    "tagKeys",
    "taskDefinition",
    "taskDefinitions",
    "maxResults",
    "nextToken",
    "familyPrefix",
    "status",
    "sort",
    "dependsOn",
    "containerName",
    "condition",
    "healthCheck",
    "command",
    "interval",
    "timeout",
    "retries",
    "startPeriod",
    "volumes",
    "mountPoints",
    "sourceVolume",
    "containerPath",
    "volumesFrom",
    "sourceContainer",
    "links",
    "essential",
    "principalArn",
    "effectiveSettings",
    "placementConstraints",
    "type",
    "expression",
    "ulimits",
    "softLimit",
    "hardLimit",
    "stopTimeout",
    "startTimeout",
    "environment",
    "configuration",
    "privileged",
    "runtimePlatform",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            "[a-zA-Z0-9:_/ .-]{0,12}",
            Just("awsvpc".to_string()),
            Just("FARGATE".to_string()),
            Just("512".to_string()),
            Just("1 vCPU".to_string()),
            Just("default".to_string()),
            Just("arn:aws:ecs:us-east-1:000000000000:cluster/default".to_string()),
            Just("arn:aws:ecs:us-east-1:000000000000:task-definition/f:1".to_string()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(MEMBERS), inner), 0..6).prop_map(|kvs| {
                Value::Object(
                    kvs.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

struct Harness {
    rt: tokio::runtime::Runtime,
    g: InProcess,
}

impl Harness {
    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let g = rt.block_on(InProcess::new());
        Harness { rt, g }
    }

    fn send(&self, op: &str, body: &[u8]) -> (u16, Value) {
        self.rt.block_on(self.g.call_raw(op, body))
    }

    fn check(&self, op: &str, body: &[u8]) {
        let (status, v) = self.send(op, body);
        assert!(
            status < 500,
            "{op} answered {status} {v} to {}",
            String::from_utf8_lossy(body)
        );
        if status == 200 {
            assert!(v.is_object(), "{op}: success without a JSON object");
        } else {
            let kind = v["__type"].as_str().unwrap_or_default();
            assert!(
                !kind.is_empty(),
                "{op} answered {status} without __type: {v}"
            );
            assert!(v["message"].is_string(), "{op}: error without message: {v}");
        }
    }
}

fn op_names() -> Vec<&'static str> {
    Operation::ALL.iter().map(|o| o.name()).collect()
}

#[test]
fn every_operation_answers_empty_and_junk_bodies_as_client_errors() {
    let h = Harness::new();
    for op in op_names() {
        for body in [
            &b""[..],
            b"{}",
            b"null",
            b"[]",
            b"{\"a\":",
            b"\xff\xfe",
            b"{\"family\":\"f\",}",
        ] {
            h.check(op, body);
        }
    }
    let (status, v) = h.send("NoSuchOperation", b"{}");
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("UnknownOperationException"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_yields_a_server_error(
        op in prop::sample::select(op_names()),
        body in json(),
    ) {
        thread_local!(static H: Harness = Harness::new());
        let text = serde_json::to_vec(&body).unwrap();
        H.with(|h| h.check(op, &text));
    }

    #[test]
    fn arbitrary_bytes_never_yield_a_server_error(
        op in prop::sample::select(op_names()),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        thread_local!(static H: Harness = Harness::new());
        H.with(|h| h.check(op, &body));
    }
}
