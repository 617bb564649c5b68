//! The generated service modules: operations, metadata constants, and serde names that are the
//! model's member names.

use gantry_api::{ecs, logs, model, sts};
use serde_json::json;

macro_rules! operations_round_trip {
    ($m:ident) => {{
        let all = $m::Operation::ALL;
        assert!(all.windows(2).all(|w| w[0].name() < w[1].name()));
        for op in all {
            assert_eq!($m::Operation::from_name(op.name()), Some(*op));
        }
        assert_eq!($m::Operation::from_name("NoSuchOperation"), None);
        all.len()
    }};
}

#[test]
fn every_operation_is_found_by_its_name() {
    assert_eq!(operations_round_trip!(ecs), 88);
    assert_eq!(operations_round_trip!(sts), 12);
    assert_eq!(operations_round_trip!(logs), 118);
    assert_eq!(
        ecs::Operation::from_name("ListGateways"),
        Some(ecs::Operation::ListGateways)
    );
    assert_eq!(
        sts::Operation::from_name("GetCallerIdentity"),
        Some(sts::Operation::GetCallerIdentity)
    );
}

#[test]
fn the_ecs_module_is_the_model_module() {
    assert_eq!(model::TARGET_PREFIX, ecs::TARGET_PREFIX);
    assert_eq!(model::Operation::ALL, ecs::Operation::ALL);
}

#[test]
fn metadata_constants() {
    assert_eq!(ecs::TARGET_PREFIX, "AmazonEC2ContainerServiceV20141113");
    assert_eq!(ecs::SIGNING_NAME, "ecs");
    assert_eq!(ecs::PROTOCOLS, ["json"]);
    assert_eq!(ecs::API_VERSION, "2014-11-13");
    assert_eq!(ecs::JSON_VERSION, "1.1");

    assert_eq!(sts::SIGNING_NAME, "sts");
    assert_eq!(sts::PROTOCOLS, ["query"]);
    assert_eq!(sts::API_VERSION, "2011-06-15");
    assert_eq!(
        sts::XML_NAMESPACE,
        "https://sts.amazonaws.com/doc/2011-06-15/"
    );

    assert_eq!(logs::TARGET_PREFIX, "Logs_20140328");
    assert_eq!(logs::SIGNING_NAME, "logs");
    assert_eq!(logs::JSON_VERSION, "1.1");
}

#[test]
fn sts_members_keep_their_pascal_case_names() {
    let out = sts::GetCallerIdentityResponse {
        user_id: Some("AIDAEXAMPLE".into()),
        account: Some("000000000000".into()),
        arn: Some("arn:aws:iam::000000000000:user/u".into()),
    };
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"UserId": "AIDAEXAMPLE", "Account": "000000000000", "Arn": "arn:aws:iam::000000000000:user/u"})
    );
    let req: sts::AssumeRoleRequest = serde_json::from_value(json!({
        "RoleArn": "arn:aws:iam::000000000000:role/r",
        "RoleSessionName": "s",
        "DurationSeconds": "900",
    }))
    .unwrap();
    assert_eq!(req.duration_seconds, Some(900));
    assert!(serde_json::from_value::<sts::AssumeRoleRequest>(json!({"RoleArn": "a"})).is_err());
    // Query-protocol timestamps are ISO 8601 text.
    let c = sts::Credentials {
        access_key_id: "AKID".into(),
        secret_access_key: "secret".into(),
        session_token: "token".into(),
        expiration: "2011-07-15T23:28:33.359Z".into(),
    };
    assert_eq!(
        serde_json::to_value(&c).unwrap()["Expiration"],
        "2011-07-15T23:28:33.359Z"
    );
}

#[test]
fn documents_hold_any_json() {
    let details = json!({"a": [1, "b"], "c": null, "d": {"e": 2.5}});
    let hook: ecs::DeploymentLifecycleHook =
        serde_json::from_value(json!({"hookDetails": details.clone()})).unwrap();
    assert_eq!(hook.hook_details.as_ref(), Some(&details));
    let scalar: ecs::DeploymentLifecycleHook =
        serde_json::from_value(json!({"hookDetails": "text"})).unwrap();
    assert_eq!(scalar.hook_details, Some(json!("text")));
    assert_eq!(
        serde_json::to_value(&hook).unwrap(),
        json!({"hookDetails": details})
    );
}

#[test]
fn a_structure_that_holds_itself_is_boxed() {
    let v = json!({"type": "array", "element": {"type": "array", "element": {"type": "string"}}});
    let t: logs::LogFieldType = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(
        t.element
            .as_ref()
            .and_then(|e| e.element.as_ref())
            .and_then(|e| e.r#type.as_deref()),
        Some("string")
    );
    assert_eq!(serde_json::to_value(&t).unwrap(), v);
}
