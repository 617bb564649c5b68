use super::*;
use crate::seal::Sealer;
use gantry_core::authz::{AuthzContext, DenialShape, Denied, Request};
use gantry_core::{AdminOnly, Authorizer, Gate, Input, Principal, Protocol};
use gantry_store::{MemStore, Store};
use serde_json::{json, Value};
use std::sync::Mutex;

const ACCOUNT: &str = "123456789012";
const DENIAL: DenialShape = DenialShape {
    code: "AccessDeniedException",
    status: 400,
};

async fn open(store: Arc<MemStore>) -> Arc<Secrets> {
    Secrets::open(store, "us-east-1", ACCOUNT, Sealer::new(&[1; 32]))
        .await
        .unwrap()
}

async fn secrets() -> Arc<Secrets> {
    open(Arc::new(MemStore::new())).await
}

fn ctx() -> AuthzContext {
    AuthzContext {
        region: "us-east-1".into(),
        source_ip: None,
        secure_transport: false,
        current_time: 0,
    }
}

async fn call_as(
    s: &Arc<Secrets>,
    who: &Principal,
    authz: &dyn Authorizer,
    op: &str,
    body: Value,
) -> Result<Value, ServiceError> {
    let c = ctx();
    let bytes = body.to_string().into_bytes();
    let call = Call {
        operation: op,
        protocol: Protocol::AwsJson1_1,
        input: Input::Json(&bytes),
        gate: Gate::new(who, authz, &c, DENIAL),
        region: "us-east-1",
        request_id: "r",
    };
    let out = Ssm(s.clone()).dispatch(call).await?;
    Ok(serde_json::from_slice(&out).unwrap())
}

async fn call(s: &Arc<Secrets>, op: &str, body: Value) -> Result<Value, ServiceError> {
    call_as(s, &Principal::system(ACCOUNT), &AdminOnly, op, body).await
}

async fn ok(s: &Arc<Secrets>, op: &str, body: Value) -> Value {
    match call(s, op, body).await {
        Ok(v) => v,
        Err(e) => panic!("{op}: {e}"),
    }
}

async fn err(s: &Arc<Secrets>, op: &str, body: Value) -> ServiceError {
    match call(s, op, body).await {
        Ok(v) => panic!("{op} succeeded: {v}"),
        Err(e) => e,
    }
}

async fn put(s: &Arc<Secrets>, name: &str, value: &str) -> i64 {
    let r = ok(
        s,
        "PutParameter",
        json!({"Name": name, "Value": value, "Type": "String", "Overwrite": true}),
    )
    .await;
    r["Version"].as_i64().unwrap()
}

async fn value(s: &Arc<Secrets>, name: &str) -> Value {
    ok(
        s,
        "GetParameter",
        json!({"Name": name, "WithDecryption": true}),
    )
    .await["Parameter"]
        .clone()
}

#[tokio::test]
async fn versions_start_at_one_and_overwrites_add_them() {
    let s = secrets().await;
    let r = ok(
        &s,
        "PutParameter",
        json!({"Name": "/app/db/host", "Value": "db1", "Type": "String", "Description": "the db"}),
    )
    .await;
    assert_eq!(r, json!({"Version": 1, "Tier": "Standard"}));
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "/app/db/host", "Value": "db2", "Type": "String"}),
    )
    .await;
    assert_eq!(e.code, "ParameterAlreadyExists");
    // Type and description are kept when an overwrite leaves them out.
    let r = ok(
        &s,
        "PutParameter",
        json!({"Name": "/app/db/host", "Value": "db2", "Overwrite": true}),
    )
    .await;
    assert_eq!(r["Version"], 2);
    let p = value(&s, "/app/db/host").await;
    assert_eq!(p["Value"], "db2");
    assert_eq!(p["Version"], 2);
    assert_eq!(p["Type"], "String");
    assert_eq!(p["DataType"], "text");
    assert_eq!(
        p["ARN"],
        "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/host"
    );
    assert!(p.get("Selector").is_none());
    let h = ok(&s, "GetParameterHistory", json!({"Name": "/app/db/host"})).await;
    let versions: Vec<(i64, &str, &str)> = h["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["Version"].as_i64().unwrap(),
                v["Value"].as_str().unwrap(),
                v["Description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, vec![(1, "db1", "the db"), (2, "db2", "the db")]);
    // A new parameter needs a type.
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "typeless", "Value": "v"}),
    )
    .await;
    assert_eq!(e.code, "ValidationException");
    // Deleted and made again, it starts over at 1.
    ok(&s, "DeleteParameter", json!({"Name": "/app/db/host"})).await;
    let e = err(&s, "GetParameter", json!({"Name": "/app/db/host"})).await;
    assert_eq!(e.code, "ParameterNotFound");
    let e = err(&s, "DeleteParameter", json!({"Name": "/app/db/host"})).await;
    assert_eq!(e.code, "ParameterNotFound");
    assert_eq!(put(&s, "/app/db/host", "db3").await, 1);
}

#[tokio::test]
async fn selectors_pick_versions_and_labels_and_arns_name_parameters() {
    let s = secrets().await;
    for v in ["one", "two", "three"] {
        put(&s, "/svc/key", v).await;
    }
    put(&s, "plain", "p").await;
    let p = value(&s, "/svc/key:1").await;
    assert_eq!(
        (p["Value"].as_str(), p["Selector"].as_str()),
        (Some("one"), Some(":1"))
    );
    let e = err(&s, "GetParameter", json!({"Name": "/svc/key:9"})).await;
    assert_eq!(e.code, "ParameterVersionNotFound");
    ok(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/svc/key", "ParameterVersion": 2, "Labels": ["prod"]}),
    )
    .await;
    let p = value(&s, "/svc/key:prod").await;
    assert_eq!(
        (p["Value"].as_str(), p["Selector"].as_str()),
        (Some("two"), Some(":prod"))
    );
    let e = err(&s, "GetParameter", json!({"Name": "/svc/key:nope"})).await;
    assert_eq!(e.code, "ParameterNotFound");
    let e = err(&s, "GetParameter", json!({"Name": "/svc/key:a:b"})).await;
    assert_eq!(e.code, "ValidationException");
    // ARNs, with and without a selector; plain names too.
    let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/svc/key";
    assert_eq!(value(&s, arn).await["Value"], "three");
    assert_eq!(value(&s, &format!("{arn}:1")).await["Value"], "one");
    assert_eq!(
        value(&s, "arn:aws:ssm:us-east-1:123456789012:parameter/plain").await["Name"],
        "plain"
    );
    let e = err(
        &s,
        "GetParameter",
        json!({"Name": "arn:aws:ssm:eu-west-1:123456789012:parameter/svc/key"}),
    )
    .await;
    assert_eq!(e.code, "ParameterNotFound");
    // The agent's way in: the same selectors.
    assert_eq!(s.parameter_value("/svc/key").unwrap(), "three");
    assert_eq!(s.parameter_value("/svc/key:prod").unwrap(), "two");
    assert_eq!(s.parameter_value(&format!("{arn}:1")).unwrap(), "one");
    assert_eq!(
        s.parameter_value("/svc/missing").unwrap_err().code,
        "ParameterNotFound"
    );
    // GetParameters: found ones with selectors, the rest invalid.
    let r = ok(
        &s,
        "GetParameters",
        json!({"Names": ["/svc/key:1", "plain", "/nope", "/svc/key:7"]}),
    )
    .await;
    let names: Vec<&str> = r["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/svc/key", "plain"]);
    assert_eq!(r["Parameters"][0]["Selector"], ":1");
    assert_eq!(r["InvalidParameters"], json!(["/nope", "/svc/key:7"]));
    let eleven: Vec<String> = (0..11).map(|i| format!("p{i}")).collect();
    let e = err(&s, "GetParameters", json!({ "Names": eleven })).await;
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn labels_move_between_versions_and_are_limited() {
    let s = secrets().await;
    for v in ["a", "b", "c"] {
        put(&s, "/l/p", v).await;
    }
    let r = ok(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 1, "Labels": ["prod", "1st", "awsy", "SSMz", "bad label", "ok_label.v-1"]}),
    )
    .await;
    assert_eq!(r["ParameterVersion"], 1);
    assert_eq!(
        r["InvalidLabels"],
        json!(["1st", "awsy", "SSMz", "bad label"])
    );
    // Without a version, the latest; the label leaves version 1.
    let r = ok(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/l/p", "Labels": ["prod"]}),
    )
    .await;
    assert_eq!(r["ParameterVersion"], 3);
    let h = ok(&s, "GetParameterHistory", json!({"Name": "/l/p"})).await;
    let labels: Vec<Value> = h["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Labels"].clone())
        .collect();
    assert_eq!(
        labels,
        vec![json!(["ok_label.v-1"]), json!([]), json!(["prod"])]
    );
    let e = err(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 9, "Labels": ["x"]}),
    )
    .await;
    assert_eq!(e.code, "ParameterVersionNotFound");
    let e = err(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/l/none", "Labels": ["x"]}),
    )
    .await;
    assert_eq!(e.code, "ParameterNotFound");
    let ten: Vec<String> = (0..10).map(|i| format!("l{i}")).collect();
    let e = err(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 3, "Labels": ten}),
    )
    .await;
    assert_eq!(e.code, "ParameterVersionLabelLimitExceeded");
    // Refused: nothing changed.
    assert_eq!(value(&s, "/l/p:prod").await["Version"], 3);
    let r = ok(
        &s,
        "UnlabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 3, "Labels": ["prod", "other"]}),
    )
    .await;
    assert_eq!(r["RemovedLabels"], json!(["prod"]));
    assert_eq!(r["InvalidLabels"], json!(["other"]));
    let e = err(&s, "GetParameter", json!({"Name": "/l/p:prod"})).await;
    assert_eq!(e.code, "ParameterNotFound");
}

#[tokio::test]
async fn paths_list_one_level_or_all_below() {
    let s = secrets().await;
    for n in [
        "/app/a",
        "/app/b",
        "/app/sub/c",
        "/app/sub/deep/d",
        "/apple",
        "plain",
    ] {
        put(&s, n, "v").await;
    }
    let names = |v: &Value| -> Vec<String> {
        v["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = ok(&s, "GetParametersByPath", json!({"Path": "/app"})).await;
    assert_eq!(names(&r), ["/app/a", "/app/b"]);
    let r = ok(&s, "GetParametersByPath", json!({"Path": "/app/"})).await;
    assert_eq!(names(&r), ["/app/a", "/app/b"]);
    let r = ok(
        &s,
        "GetParametersByPath",
        json!({"Path": "/app", "Recursive": true}),
    )
    .await;
    assert_eq!(
        names(&r),
        ["/app/a", "/app/b", "/app/sub/c", "/app/sub/deep/d"]
    );
    let r = ok(&s, "GetParametersByPath", json!({"Path": "/"})).await;
    assert_eq!(names(&r), ["/apple", "plain"]);
    // Pages of one, to the end.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Path": "/app", "Recursive": true, "MaxResults": 1});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let r = ok(&s, "GetParametersByPath", body).await;
        all.extend(names(&r));
        match r.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(all, ["/app/a", "/app/b", "/app/sub/c", "/app/sub/deep/d"]);
    let e = err(&s, "GetParametersByPath", json!({"Path": "app"})).await;
    assert_eq!(e.code, "ValidationException");
    let e = err(
        &s,
        "GetParametersByPath",
        json!({"Path": "/app", "MaxResults": 11}),
    )
    .await;
    assert_eq!(e.code, "ValidationException");
    let e = err(
        &s,
        "GetParametersByPath",
        json!({"Path": "/app", "NextToken": "garbage!"}),
    )
    .await;
    assert_eq!(e.code, "InvalidNextToken");
    let e = err(
        &s,
        "GetParametersByPath",
        json!({"Path": "/app", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
    )
    .await;
    assert_eq!(e.code, "InvalidFilterKey");
    // Type and Label filters are served.
    ok(
        &s,
        "PutParameter",
        json!({"Name": "/app/list", "Value": "a,b", "Type": "StringList"}),
    )
    .await;
    let r = ok(
        &s,
        "GetParametersByPath",
        json!({"Path": "/app", "ParameterFilters": [{"Key": "Type", "Values": ["StringList"]}]}),
    )
    .await;
    assert_eq!(names(&r), ["/app/list"]);
    put(&s, "/app/a", "v2").await;
    ok(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/app/a", "ParameterVersion": 1, "Labels": ["live"]}),
    )
    .await;
    let r = ok(
        &s,
        "GetParametersByPath",
        json!({"Path": "/app", "ParameterFilters": [{"Key": "Label", "Values": ["live"]}]}),
    )
    .await;
    assert_eq!(names(&r), ["/app/a"]);
    assert_eq!(r["Parameters"][0]["Version"], 1);
}

#[tokio::test]
async fn names_are_checked_as_aws_checks_them() {
    let s = secrets().await;
    let deep = format!("/{}", vec!["l"; 16].join("/"));
    let fifteen = format!("/{}", vec!["l"; 15].join("/"));
    let long = format!("/{}", "n".repeat(1000));
    for (name, code) in [
        ("has space", "ValidationException"),
        ("a/b", "ValidationException"),
        ("/a//b", "ValidationException"),
        ("/a/", "ValidationException"),
        ("/", "ValidationException"),
        ("semi;colon", "ValidationException"),
        ("awsthing", "ValidationException"),
        ("SSM-thing", "ValidationException"),
        ("/aws/x", "ValidationException"),
        ("/ssm/x", "ValidationException"),
        (
            "arn:aws:ssm:us-east-1:123456789012:parameter/x",
            "ValidationException",
        ),
        (deep.as_str(), "HierarchyLevelLimitExceededException"),
        (long.as_str(), "ValidationException"),
    ] {
        let e = err(
            &s,
            "PutParameter",
            json!({"Name": name, "Value": "v", "Type": "String"}),
        )
        .await;
        assert_eq!(e.code, code, "{name}: {}", e.message);
    }
    for name in [
        "plain",
        "with.dots-and_underscores",
        "/a/b/c",
        "/my/awsish",
        fifteen.as_str(),
    ] {
        ok(
            &s,
            "PutParameter",
            json!({"Name": name, "Value": "v", "Type": "String"}),
        )
        .await;
    }
    // Spaces around a name are dropped, as AWS drops them.
    assert_eq!(value(&s, " /a/b/c ").await["Name"], "/a/b/c");
}

#[tokio::test]
async fn values_are_checked_and_never_echoed() {
    let s = secrets().await;
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "big", "Value": "x".repeat(4097), "Type": "String"}),
    )
    .await;
    assert_eq!(e.code, "ValidationException");
    ok(
        &s,
        "PutParameter",
        json!({"Name": "max", "Value": "x".repeat(4096), "Type": "String"}),
    )
    .await;
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "nest", "Value": "{{ssm:other}}", "Type": "String"}),
    )
    .await;
    assert_eq!(e.code, "ValidationException");
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "n", "Value": "hunter2x", "Type": "String", "AllowedPattern": "^\\d+$"}),
    )
    .await;
    assert_eq!(e.code, "ParameterPatternMismatchException");
    assert!(!e.message.contains("hunter2x"), "{}", e.message);
    ok(
        &s,
        "PutParameter",
        json!({"Name": "n", "Value": "42", "Type": "String", "AllowedPattern": "^\\d+$"}),
    )
    .await;
    // The pattern stays with the parameter for the next overwrite.
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "n", "Value": "nope", "Overwrite": true}),
    )
    .await;
    assert_eq!(e.code, "ParameterPatternMismatchException");
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "n2", "Value": "1", "Type": "String", "AllowedPattern": "(?=x)"}),
    )
    .await;
    assert_eq!(e.code, "InvalidAllowedPatternException");
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "n3", "Value": 12345678, "Type": "String"}),
    )
    .await;
    assert!(!e.message.contains("12345678"), "{}", e.message);
    for (extra, code) in [
        (json!({"Tier": "Advanced"}), "ValidationException"),
        (json!({"DataType": "aws:ec2:image"}), "ValidationException"),
        (json!({"KeyId": "alias/x"}), "ValidationException"),
        (json!({"Type": "Bogus"}), "ValidationException"),
    ] {
        let mut body = json!({"Name": "t", "Value": "v", "Type": "String"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let e = err(&s, "PutParameter", body).await;
        assert_eq!(e.code, code, "{extra}");
    }
    let r = ok(
        &s,
        "PutParameter",
        json!({"Name": "it", "Value": "v", "Type": "String", "Tier": "Intelligent-Tiering"}),
    )
    .await;
    assert_eq!(r["Tier"], "Standard");
}

#[tokio::test]
async fn secure_strings_open_only_when_asked_and_nothing_is_plain_at_rest() {
    let store = Arc::new(MemStore::new());
    let s = open(store.clone()).await;
    ok(
        &s,
        "PutParameter",
        json!({"Name": "/db/password", "Value": "hunter2-secret", "Type": "SecureString"}),
    )
    .await;
    put(&s, "/db/user", "admin-user-plain").await;
    let p = ok(&s, "GetParameter", json!({"Name": "/db/password"})).await["Parameter"].clone();
    assert_eq!(p["Type"], "SecureString");
    assert_ne!(p["Value"], "hunter2-secret");
    assert!(!p["Value"].as_str().unwrap().contains("hunter2"));
    assert_eq!(value(&s, "/db/password").await["Value"], "hunter2-secret");
    let by_path = ok(&s, "GetParametersByPath", json!({"Path": "/db"})).await;
    assert!(!by_path.to_string().contains("hunter2"));
    let d = ok(&s, "DescribeParameters", json!({})).await;
    assert_eq!(d["Parameters"][0]["KeyId"], "alias/aws/ssm");
    // Every value is sealed in the store, whatever its type.
    let (kvs, _) = store.range("").await.unwrap();
    assert!(!kvs.is_empty());
    for kv in &kvs {
        let text = String::from_utf8_lossy(&kv.value);
        assert!(!text.contains("hunter2"), "{}", kv.key);
        assert!(!text.contains("admin-user-plain"), "{}", kv.key);
    }
    // And reopened (a restart), they open again; with another key they do not.
    let again = open(store.clone()).await;
    assert_eq!(
        again.parameter_value("/db/password").unwrap(),
        "hunter2-secret"
    );
    let other = Secrets::open(store, "us-east-1", ACCOUNT, Sealer::new(&[2; 32]))
        .await
        .unwrap();
    let e = other.parameter_value("/db/user").unwrap_err();
    assert_eq!(e.code, "InternalServerError");
    assert!(!e.message.contains("admin-user"));
}

#[tokio::test]
async fn describe_filters_and_pages() {
    let s = secrets().await;
    for n in ["/f/a", "/f/b/c", "/g/x", "fplain"] {
        put(&s, n, "v").await;
    }
    ok(
        &s,
        "PutParameter",
        json!({"Name": "/f/secret", "Value": "v", "Type": "SecureString", "Tags": [{"Key": "team", "Value": "red"}]}),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_string())
            .collect()
    };
    let d = |f: Value| {
        let s = s.clone();
        async move { ok(&s, "DescribeParameters", json!({"ParameterFilters": f})).await }
    };
    assert_eq!(
        names(&d(json!([{"Key": "Name", "Option": "BeginsWith", "Values": ["/f"]}])).await),
        ["/f/a", "/f/b/c", "/f/secret", "fplain"]
    );
    assert_eq!(
        names(&d(json!([{"Key": "Name", "Values": ["/g/x"]}])).await),
        ["/g/x"]
    );
    assert_eq!(
        names(&d(json!([{"Key": "Type", "Values": ["SecureString"]}])).await),
        ["/f/secret"]
    );
    assert_eq!(
        names(&d(json!([{"Key": "Path", "Values": ["/f"]}])).await),
        ["/f/a", "/f/secret"]
    );
    assert_eq!(
        names(&d(json!([{"Key": "Path", "Option": "Recursive", "Values": ["/f"]}])).await),
        ["/f/a", "/f/b/c", "/f/secret"]
    );
    assert_eq!(
        names(&d(json!([{"Key": "tag:team", "Values": ["red"]}])).await),
        ["/f/secret"]
    );
    let r = ok(
        &s,
        "DescribeParameters",
        json!({"Filters": [{"Key": "Name", "Values": ["/g"]}]}),
    )
    .await;
    assert_eq!(names(&r), ["/g/x"]);
    for (f, code) in [
        (
            json!([{"Key": "Label", "Values": ["x"]}]),
            "InvalidFilterKey",
        ),
        (
            json!([{"Key": "Bogus", "Values": ["x"]}]),
            "ValidationException",
        ),
        (
            json!([{"Key": "Name", "Option": "Like", "Values": ["x"]}]),
            "InvalidFilterOption",
        ),
        (json!([{"Key": "Name"}]), "InvalidFilterValue"),
        (
            json!([{"Key": "Type", "Values": ["Nope"]}]),
            "InvalidFilterValue",
        ),
        (
            json!([{"Key": "Name", "Values": ["a"]}, {"Key": "Name", "Values": ["b"]}]),
            "InvalidFilterKey",
        ),
        (
            json!([{"Key": "Path", "Values": ["nope"]}]),
            "ValidationException",
        ),
    ] {
        let e = err(&s, "DescribeParameters", json!({"ParameterFilters": f})).await;
        assert_eq!(e.code, code, "{f}");
    }
    let r = ok(&s, "DescribeParameters", json!({"MaxResults": 2})).await;
    assert_eq!(names(&r).len(), 2);
    let r2 = ok(
        &s,
        "DescribeParameters",
        json!({"MaxResults": 50, "NextToken": r["NextToken"]}),
    )
    .await;
    assert_eq!(names(&r2).len(), 3);
    assert!(r2.get("NextToken").is_none());
    let e = err(&s, "DescribeParameters", json!({"MaxResults": 51})).await;
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn tags_are_added_removed_and_listed() {
    let s = secrets().await;
    ok(
        &s,
        "PutParameter",
        json!({"Name": "/t/p", "Value": "v", "Type": "String", "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "/t/p", "Value": "v", "Overwrite": true, "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    assert_eq!(e.code, "ValidationException");
    ok(
        &s,
        "AddTagsToResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/p", "Tags": [{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "9"}]}),
    )
    .await;
    let l = ok(
        &s,
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/p"}),
    )
    .await;
    assert_eq!(
        l["TagList"],
        json!([{"Key": "a", "Value": "9"}, {"Key": "b", "Value": "2"}])
    );
    ok(
        &s,
        "RemoveTagsFromResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/p", "TagKeys": ["a"]}),
    )
    .await;
    let l = ok(
        &s,
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": "arn:aws:ssm:us-east-1:123456789012:parameter/t/p"}),
    )
    .await;
    assert_eq!(l["TagList"], json!([{"Key": "b", "Value": "2"}]));
    let e = err(
        &s,
        "ListTagsForResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/none"}),
    )
    .await;
    assert_eq!(e.code, "InvalidResourceId");
    let e = err(
        &s,
        "ListTagsForResource",
        json!({"ResourceType": "Document", "ResourceId": "/t/p"}),
    )
    .await;
    assert_eq!(e.code, "InvalidResourceType");
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let e = err(
        &s,
        "AddTagsToResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/p", "Tags": many}),
    )
    .await;
    assert_eq!(e.code, "TooManyTagsError");
    let r = ok(
        &s,
        "DeleteParameters",
        json!({"Names": ["/t/p", "/t/none"]}),
    )
    .await;
    assert_eq!(r["DeletedParameters"], json!(["/t/p"]));
    assert_eq!(r["InvalidParameters"], json!(["/t/none"]));
}

#[tokio::test]
async fn the_hundredth_version_pushes_out_the_oldest_unless_it_is_labelled() {
    let s = secrets().await;
    for i in 1..=100 {
        put(&s, "/v/p", &format!("v{i}")).await;
    }
    ok(
        &s,
        "LabelParameterVersion",
        json!({"Name": "/v/p", "ParameterVersion": 1, "Labels": ["first"]}),
    )
    .await;
    let e = err(
        &s,
        "PutParameter",
        json!({"Name": "/v/p", "Value": "v101", "Overwrite": true}),
    )
    .await;
    assert_eq!(e.code, "ParameterMaxVersionLimitExceeded");
    ok(
        &s,
        "UnlabelParameterVersion",
        json!({"Name": "/v/p", "ParameterVersion": 1, "Labels": ["first"]}),
    )
    .await;
    assert_eq!(put(&s, "/v/p", "v101").await, 101);
    let e = err(&s, "GetParameter", json!({"Name": "/v/p:1"})).await;
    assert_eq!(e.code, "ParameterVersionNotFound");
    assert_eq!(value(&s, "/v/p:2").await["Value"], "v2");
    let h = ok(&s, "GetParameterHistory", json!({"Name": "/v/p"})).await;
    assert_eq!(h["Parameters"].as_array().unwrap().len(), 50);
    let h2 = ok(
        &s,
        "GetParameterHistory",
        json!({"Name": "/v/p", "NextToken": h["NextToken"]}),
    )
    .await;
    assert_eq!(h2["Parameters"][0]["Version"], 52);
    assert_eq!(h2["Parameters"].as_array().unwrap().len(), 50);
    assert!(h2.get("NextToken").is_none());
}

/// What an authorizer was asked: the action, resources and condition keys.
type Asked = (String, Vec<String>, Vec<(String, Vec<String>)>);

/// Allows everything, and records what it was asked.
#[derive(Default)]
struct Recorder {
    asked: Mutex<Vec<Asked>>,
    /// Denies any resource tagged with this pair.
    deny_tag: Option<(String, String)>,
}

impl Authorizer for Recorder {
    fn authorize(&self, _p: &Principal, r: &Request<'_>) -> Result<(), Denied> {
        self.asked.lock().unwrap().push((
            r.action.to_string(),
            r.resources.to_vec(),
            r.keys.to_vec(),
        ));
        if let Some(t) = &self.deny_tag {
            for res in r.resources {
                if r.tags.tags_of(res).contains(t) {
                    return Err(Denied {
                        resource: res.clone(),
                        reason: "because of a tag".into(),
                    });
                }
            }
        }
        Ok(())
    }

    fn role_trusts(&self, _: &str, _: &str) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test]
async fn every_operation_asks_the_gate_first_on_the_parameter_arn() {
    let s = secrets().await;
    let who = Principal::system(ACCOUNT);
    let rec = Recorder::default();
    let base = "arn:aws:ssm:us-east-1:123456789012:parameter/";
    let cases = [
        (
            "PutParameter",
            json!({"Name": "/a/b", "Value": "v", "Type": "String", "Tags": [{"Key": "team", "Value": "red"}]}),
            "ssm:PutParameter",
            vec![format!("{base}a/b")],
        ),
        (
            "GetParameter",
            json!({"Name": "/a/b:1"}),
            "ssm:GetParameter",
            vec![format!("{base}a/b")],
        ),
        (
            "GetParameters",
            json!({"Names": ["/a/b", "plain"]}),
            "ssm:GetParameters",
            vec![format!("{base}a/b"), format!("{base}plain")],
        ),
        (
            "GetParametersByPath",
            json!({"Path": "/a/"}),
            "ssm:GetParametersByPath",
            vec![format!("{base}a")],
        ),
        (
            "GetParametersByPath",
            json!({"Path": "/"}),
            "ssm:GetParametersByPath",
            vec![base.to_string()],
        ),
        (
            "DescribeParameters",
            json!({}),
            "ssm:DescribeParameters",
            vec!["*".to_string()],
        ),
        (
            "GetParameterHistory",
            json!({"Name": "/a/b"}),
            "ssm:GetParameterHistory",
            vec![format!("{base}a/b")],
        ),
        (
            "LabelParameterVersion",
            json!({"Name": "/a/b", "Labels": ["x"]}),
            "ssm:LabelParameterVersion",
            vec![format!("{base}a/b")],
        ),
        (
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/a/b"}),
            "ssm:ListTagsForResource",
            vec![format!("{base}a/b")],
        ),
        (
            "DeleteParameter",
            json!({"Name": "/a/b"}),
            "ssm:DeleteParameter",
            vec![format!("{base}a/b")],
        ),
        // Asked even when the parameter is not there.
        (
            "GetParameter",
            json!({"Name": "/gone"}),
            "ssm:GetParameter",
            vec![format!("{base}gone")],
        ),
    ];
    for (op, body, action, resources) in cases {
        let _ = call_as(&s, &who, &rec, op, body).await;
        let asked = rec.asked.lock().unwrap().pop().unwrap();
        assert_eq!((asked.0.as_str(), asked.1), (action, resources), "{op}");
        if op == "PutParameter" {
            assert!(asked
                .2
                .contains(&("aws:RequestTag/team".into(), vec!["red".into()])));
            assert!(asked
                .2
                .contains(&("aws:TagKeys".into(), vec!["team".into()])));
        }
    }
    // Denied callers change nothing and learn nothing.
    let mut other = who.clone();
    other.admin = false;
    other.arn = "arn:aws:iam::123456789012:user/bob".into();
    let e = call_as(
        &s,
        &other,
        &AdminOnly,
        "PutParameter",
        json!({"Name": "/x", "Value": "secret-value", "Type": "String"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert!(!e.message.contains("secret-value"));
    assert!(s.parameters.snapshot().get("/x").is_none());
}

#[tokio::test]
async fn resource_tags_reach_the_authorizer() {
    let s = secrets().await;
    ok(
        &s,
        "PutParameter",
        json!({"Name": "/red/p", "Value": "v", "Type": "String", "Tags": [{"Key": "team", "Value": "red"}]}),
    )
    .await;
    put(&s, "/blue/p", "v").await;
    let rec = Recorder {
        deny_tag: Some(("team".into(), "red".into())),
        ..Default::default()
    };
    let who = Principal::system(ACCOUNT);
    let e = call_as(&s, &who, &rec, "GetParameter", json!({"Name": "/red/p"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert!(
        call_as(&s, &who, &rec, "GetParameter", json!({"Name": "/blue/p"}))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn unknown_and_unserved_operations_are_named() {
    let s = secrets().await;
    assert_eq!(
        err(&s, "SendCommand", json!({})).await.code,
        "UnsupportedOperationException"
    );
    assert_eq!(
        err(&s, "Nonsense", json!({})).await.code,
        "UnknownOperationException"
    );
    assert_eq!(
        err(&s, "GetParameter", json!({})).await.code,
        "ValidationException"
    );
}
