//! Every condition operator family, set operators, IfExists and Null.

use super::*;

/// An Allow-everything statement guarded by `condition`.
fn guarded(condition: &str) -> Policy {
    identity(&format!(
        r#"{{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {condition}}}"#
    ))
}

fn holds(policy: &Policy, facts: &MapFacts) -> bool {
    decide(&[policy], "ecs:RunTask", PROD, facts) == Decision::Allowed
}

fn one(key: &str, value: &str) -> MapFacts {
    MapFacts::new(&[(key, &[value])])
}

#[test]
fn string_operators() {
    let p = guarded(r#"{"StringEquals": {"aws:ResourceTag/Team": ["red", "blue"]}}"#);
    assert!(holds(&p, &one("aws:resourcetag/team", "red")));
    assert!(holds(&p, &one("aws:resourcetag/team", "blue")));
    assert!(!holds(&p, &one("aws:resourcetag/team", "Red")));
    assert!(!holds(&p, &one("aws:resourcetag/team", "green")));
    assert!(!holds(&p, &MapFacts::default()));

    let p = guarded(r#"{"StringNotEquals": {"aws:ResourceTag/team": ["red", "blue"]}}"#);
    assert!(!holds(&p, &one("aws:resourcetag/team", "red")));
    assert!(!holds(&p, &one("aws:resourcetag/team", "blue")));
    assert!(holds(&p, &one("aws:resourcetag/team", "green")));

    let p = guarded(r#"{"StringEqualsIgnoreCase": {"aws:ResourceTag/team": "RED"}}"#);
    assert!(holds(&p, &one("aws:resourcetag/team", "red")));
    assert!(holds(&p, &one("aws:resourcetag/team", "rEd")));
    assert!(!holds(&p, &one("aws:resourcetag/team", "reds")));
    let p = guarded(r#"{"StringNotEqualsIgnoreCase": {"aws:ResourceTag/team": "RED"}}"#);
    assert!(!holds(&p, &one("aws:resourcetag/team", "Red")));
    assert!(holds(&p, &one("aws:resourcetag/team", "blue")));

    let p = guarded(r#"{"StringLike": {"ecs:cluster": ["prod-*", "stag?"]}}"#);
    assert!(holds(&p, &one("ecs:cluster", "prod-eu")));
    assert!(holds(&p, &one("ecs:cluster", "stage")));
    assert!(!holds(&p, &one("ecs:cluster", "staging")));
    let p = guarded(r#"{"StringNotLike": {"ecs:cluster": ["prod-*", "stag?"]}}"#);
    assert!(!holds(&p, &one("ecs:cluster", "prod-eu")));
    assert!(holds(&p, &one("ecs:cluster", "staging")));

    // StringEquals treats `*` literally.
    let p = guarded(r#"{"StringEquals": {"ecs:cluster": "prod-*"}}"#);
    assert!(!holds(&p, &one("ecs:cluster", "prod-eu")));
    assert!(holds(&p, &one("ecs:cluster", "prod-*")));
    // Condition keys are case-insensitive.
    let p = guarded(r#"{"StringEquals": {"ECS:Cluster": "prod"}}"#);
    assert!(holds(&p, &one("ecs:cluster", "prod")));
}

#[test]
fn keys_and_operators_and_values_or() {
    let p = guarded(
        r#"{"StringEquals": {"aws:ResourceTag/team": ["red", "blue"], "aws:RequestTag/env": "prod"},
            "Bool": {"aws:SecureTransport": "true"}}"#,
    );
    let mut facts = MapFacts::new(&[
        ("aws:resourcetag/team", &["blue"]),
        ("aws:requesttag/env", &["prod"]),
        ("aws:securetransport", &["true"]),
    ]);
    assert!(holds(&p, &facts));
    facts.set("aws:securetransport", &["false"]);
    assert!(!holds(&p, &facts));
    facts.set("aws:securetransport", &["TRUE"]);
    assert!(holds(&p, &facts));
    facts.set("aws:requesttag/env", &["dev"]);
    assert!(!holds(&p, &facts));
}

#[test]
fn variables_in_conditions() {
    let p = guarded(r#"{"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}"#);
    let mut facts = MapFacts::new(&[
        ("aws:resourcetag/owner", &["dev"]),
        ("aws:username", &["dev"]),
    ]);
    assert!(holds(&p, &facts));
    facts.set("aws:username", &["ops"]);
    assert!(!holds(&p, &facts));
    let p =
        guarded(r#"{"StringEqualsIgnoreCase": {"aws:ResourceTag/owner": "user-${aws:username}"}}"#);
    facts.set("aws:resourcetag/owner", &["USER-OPS"]);
    assert!(holds(&p, &facts));
    let p = guarded(r#"{"StringLike": {"s3:prefix": "home/${aws:username}/*"}}"#);
    assert!(holds(
        &p,
        &MapFacts::new(&[("s3:prefix", &["home/ops/x"]), ("aws:username", &["ops"])])
    ));
    assert!(!holds(
        &p,
        &MapFacts::new(&[("s3:prefix", &["home/dev/x"]), ("aws:username", &["ops"])])
    ));
    assert!(!holds(
        &p,
        &MapFacts::new(&[("s3:prefix", &["home/dev/x"])])
    ));
    // An unresolvable variable matches nothing, so a negated operator holds.
    let p = guarded(r#"{"StringNotEquals": {"aws:ResourceTag/owner": "${aws:username}"}}"#);
    assert!(holds(&p, &one("aws:resourcetag/owner", "dev")));
}

#[test]
fn numeric_operators() {
    let cases: [(&str, &str, bool); 12] = [
        ("NumericEquals", "10", true),
        ("NumericEquals", "10.0", true),
        ("NumericEquals", "11", false),
        ("NumericNotEquals", "11", true),
        ("NumericNotEquals", "10", false),
        ("NumericLessThan", "9.5", true),
        ("NumericLessThan", "10", false),
        ("NumericLessThanEquals", "10", true),
        ("NumericGreaterThan", "10", false),
        ("NumericGreaterThan", "1e3", true),
        ("NumericGreaterThanEquals", "10", true),
        ("NumericGreaterThanEquals", "abc", false),
    ];
    for (op, request, expected) in cases {
        let p = guarded(&format!(r#"{{"{op}": {{"s3:max-keys": 10}}}}"#));
        assert_eq!(
            holds(&p, &one("s3:max-keys", request)),
            expected,
            "{op} {request}"
        );
    }
    let p = guarded(r#"{"NumericLessThan": {"s3:max-keys": ["5", 20]}}"#);
    assert!(holds(&p, &one("s3:max-keys", "19")));
    assert!(!holds(&p, &one("s3:max-keys", "20")));
    assert!(!holds(&p, &MapFacts::default()));
    let p = guarded(r#"{"NumericNotEquals": {"s3:max-keys": ["5", "20"]}}"#);
    assert!(!holds(&p, &one("s3:max-keys", "20")));
    assert!(holds(&p, &one("s3:max-keys", "7")));
    assert!(holds(&p, &MapFacts::default()));
}

#[test]
fn date_operators() {
    let at = |t: &str| one("aws:currenttime", t);
    let p = guarded(r#"{"DateLessThan": {"aws:CurrentTime": "2026-12-01T10:00:00Z"}}"#);
    assert!(holds(&p, &at("2026-12-01T09:59:59Z")));
    assert!(holds(&p, &at("2026-12-01T09:59:59.999Z")));
    assert!(holds(&p, &at("2026-12-01T11:59:59+02:00")));
    assert!(!holds(&p, &at("2026-12-01T10:00:00Z")));
    assert!(!holds(&p, &at("2027-01-01")));
    assert!(holds(&p, &at("1700000000")));
    assert!(!holds(&p, &at("not a date")));
    assert!(!holds(&p, &MapFacts::default()));

    let p = guarded(
        r#"{"DateGreaterThanEquals": {"aws:CurrentTime": "2026-01-01"},
            "DateLessThanEquals": {"aws:CurrentTime": "2026-12-31T23:59:59.5Z"}}"#,
    );
    assert!(holds(&p, &at("2026-01-01T00:00:00Z")));
    assert!(holds(&p, &at("2026-12-31T23:59:59.5Z")));
    assert!(!holds(&p, &at("2026-12-31T23:59:59.6Z")));
    assert!(!holds(&p, &at("2025-12-31T23:59:59Z")));

    let p = guarded(r#"{"DateEquals": {"aws:EpochTime": 1700000000}}"#);
    assert!(holds(&p, &one("aws:epochtime", "2023-11-14T22:13:20Z")));
    assert!(holds(&p, &one("aws:epochtime", "1700000000")));
    let p = guarded(r#"{"DateNotEquals": {"aws:EpochTime": "2023-11-14T22:13:20Z"}}"#);
    assert!(!holds(&p, &one("aws:epochtime", "1700000000")));
    assert!(holds(&p, &one("aws:epochtime", "1700000001")));
    let p = guarded(r#"{"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:01Z"}}"#);
    assert!(holds(
        &p,
        &one("aws:tokenissuetime", "2020-01-01T00:00:02Z")
    ));
    assert!(!holds(
        &p,
        &one("aws:tokenissuetime", "2020-01-01T00:00:01Z")
    ));
}

#[test]
fn bool_and_binary() {
    let p = guarded(r#"{"Bool": {"aws:SecureTransport": false}}"#);
    assert!(holds(&p, &one("aws:securetransport", "false")));
    assert!(holds(&p, &one("aws:securetransport", "False")));
    assert!(!holds(&p, &one("aws:securetransport", "true")));
    assert!(!holds(&p, &MapFacts::default()));
    let p = guarded(r#"{"Bool": {"aws:MultiFactorAuthPresent": "TRUE"}}"#);
    assert!(holds(&p, &one("aws:multifactorauthpresent", "true")));

    let p = guarded(r#"{"BinaryEquals": {"ecs:blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#);
    assert!(holds(&p, &one("ecs:blob", "QmluYXJ5VmFsdWVJbkJhc2U2NA==")));
    assert!(!holds(&p, &one("ecs:blob", "QmluYXJ5")));
}

#[test]
fn ip_operators() {
    let p = guarded(
        r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64", "198.51.100.7"]}}"#,
    );
    for (ip, expected) in [
        ("203.0.113.0", true),
        ("203.0.113.255", true),
        ("203.0.114.1", false),
        ("198.51.100.7", true),
        ("198.51.100.8", false),
        ("2001:db8:1234:5678::abcd", true),
        ("2001:db8:1234:5679::1", false),
        ("garbage", false),
    ] {
        assert_eq!(holds(&p, &one("aws:sourceip", ip)), expected, "{ip}");
    }
    assert!(!holds(&p, &MapFacts::default()));
    let p = guarded(r#"{"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}"#);
    assert!(holds(&p, &one("aws:sourceip", "8.8.8.8")));
    assert!(!holds(&p, &one("aws:sourceip", "10.1.2.3")));
    assert!(!holds(&p, &one("aws:sourceip", "192.168.1.1")));
    assert!(holds(&p, &MapFacts::default()));
}

#[test]
fn arn_operators() {
    let p = guarded(r#"{"ArnLike": {"aws:SourceArn": "arn:aws:ecs:*:123456789012:cluster/*"}}"#);
    assert!(holds(&p, &one("aws:sourcearn", PROD)));
    let sneaky = "arn:aws:ecs:us-east-1:999999999999:x:123456789012:cluster/prod";
    assert!(!holds(&p, &one("aws:sourcearn", sneaky)));
    assert!(!holds(&p, &one("aws:sourcearn", "not-an-arn")));
    // StringLike would match what ArnLike does not (the AWS docs' example).
    let s = guarded(r#"{"StringLike": {"aws:SourceArn": "arn:aws:ecs:*:123456789012:cluster/*"}}"#);
    assert!(holds(&s, &one("aws:sourcearn", sneaky)));

    let p = guarded(
        r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/${aws:username}"}}"#,
    );
    let facts = MapFacts::new(&[
        ("aws:principalarn", &["arn:aws:iam::123456789012:role/dev"]),
        ("aws:username", &["dev"]),
    ]);
    assert!(holds(&p, &facts));
    let p =
        guarded(r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:user/dev"}}"#);
    assert!(!holds(
        &p,
        &one("aws:principalarn", "arn:aws:iam::123456789012:user/dev")
    ));
    assert!(holds(
        &p,
        &one("aws:principalarn", "arn:aws:iam::123456789012:user/ops")
    ));
    assert!(holds(&p, &MapFacts::default()));
    let p = guarded(
        r#"{"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/admin-*", "*:user/x"]}}"#,
    );
    assert!(!holds(
        &p,
        &one("aws:principalarn", "arn:aws:iam::1:role/admin-a")
    ));
    assert!(!holds(
        &p,
        &one("aws:principalarn", "arn:aws:iam::1:user/x")
    ));
    assert!(holds(
        &p,
        &one("aws:principalarn", "arn:aws:iam::1:role/dev")
    ));
}

#[test]
fn if_exists() {
    let p = guarded(r#"{"StringEqualsIfExists": {"ecs:cluster": "prod"}}"#);
    assert!(holds(&p, &MapFacts::default()));
    assert!(holds(&p, &one("ecs:cluster", "prod")));
    assert!(!holds(&p, &one("ecs:cluster", "dev")));
    let p = guarded(r#"{"NumericLessThanIfExists": {"s3:max-keys": "10"}}"#);
    assert!(holds(&p, &MapFacts::default()));
    assert!(!holds(&p, &one("s3:max-keys", "11")));
    let p = guarded(
        r#"{"DateLessThanIfExists": {"aws:CurrentTime": "2026-01-01"}, "IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}"#,
    );
    assert!(holds(&p, &MapFacts::default()));
    assert!(!holds(&p, &one("aws:sourceip", "11.0.0.1")));
    let p = guarded(r#"{"StringNotEqualsIfExists": {"ecs:cluster": "prod"}}"#);
    assert!(holds(&p, &MapFacts::default()));
    assert!(!holds(&p, &one("ecs:cluster", "prod")));
    let p = guarded(
        r#"{"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}, "ArnLikeIfExists": {"aws:SourceArn": "arn:aws:ecs:*:*:*"}}"#,
    );
    assert!(holds(&p, &MapFacts::default()));
    assert!(!holds(&p, &one("aws:multifactorauthpresent", "true")));
}

#[test]
fn null_check() {
    let absent = guarded(r#"{"Null": {"aws:TokenIssueTime": "true"}}"#);
    let present = guarded(r#"{"Null": {"aws:TokenIssueTime": false}}"#);
    let none = MapFacts::default();
    let with = one("aws:tokenissuetime", "2026-01-01T00:00:00Z");
    assert!(holds(&absent, &none));
    assert!(!holds(&absent, &with));
    assert!(!holds(&present, &none));
    assert!(holds(&present, &with));
    let empty = MapFacts::new(&[("aws:tokenissuetime", &[])]);
    assert!(holds(&absent, &empty));
}

#[test]
fn negated_operators_with_missing_keys_are_true() {
    let none = MapFacts::default();
    for (op, value) in [
        ("StringNotEquals", "\"x\""),
        ("StringNotEqualsIgnoreCase", "\"x\""),
        ("StringNotLike", "\"x*\""),
        ("NumericNotEquals", "1"),
        ("DateNotEquals", "\"2026-01-01\""),
        ("NotIpAddress", "\"10.0.0.0/8\""),
        ("ArnNotEquals", "\"arn:aws:iam::1:user/x\""),
        ("ArnNotLike", "\"arn:aws:iam::1:user/*\""),
    ] {
        let p = guarded(&format!(r#"{{"{op}": {{"ecs:missing": {value}}}}}"#));
        assert!(holds(&p, &none), "{op}");
    }
    for (op, value) in [
        ("StringEquals", "\"x\""),
        ("StringEqualsIgnoreCase", "\"x\""),
        ("StringLike", "\"*\""),
        ("NumericEquals", "1"),
        ("NumericLessThan", "1"),
        ("DateEquals", "\"2026-01-01\""),
        ("DateGreaterThan", "\"2026-01-01\""),
        ("Bool", "true"),
        ("BinaryEquals", "\"QQ==\""),
        ("IpAddress", "\"0.0.0.0/0\""),
        ("ArnEquals", "\"*\""),
        ("ArnLike", "\"*\""),
    ] {
        let p = guarded(&format!(r#"{{"{op}": {{"ecs:missing": {value}}}}}"#));
        assert!(!holds(&p, &none), "{op}");
    }
}

#[test]
fn tag_keys_set_operators() {
    let keys = |k: &[&str]| MapFacts::new(&[("aws:tagkeys", k)]);
    let all = guarded(r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#);
    assert!(holds(&all, &keys(&["env"])));
    assert!(holds(&all, &keys(&["env", "team"])));
    assert!(!holds(&all, &keys(&["env", "cost"])));
    assert!(
        holds(&all, &MapFacts::default()),
        "ForAllValues holds when the key is missing"
    );
    assert!(holds(&all, &keys(&[])), "and when it is empty");

    let any = guarded(r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}"#);
    assert!(holds(&any, &keys(&["cost", "team"])));
    assert!(!holds(&any, &keys(&["cost"])));
    assert!(
        !holds(&any, &MapFacts::default()),
        "ForAnyValue fails when the key is missing"
    );
    assert!(!holds(&any, &keys(&[])));

    // The AWS docs' example: Deny with ForAllValues:StringNotLike "key1*".
    let deny = identity(
        r#"[{"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:Tag*", "Resource": "*",
         "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}}]"#,
    );
    let tag = |facts: &MapFacts| decide(&[&deny], "iam:TagUser", "*", facts);
    assert_eq!(tag(&keys(&["key1:legal"])), Decision::Allowed);
    assert_eq!(
        tag(&keys(&["key1:hr", "key1:personnel"])),
        Decision::Allowed
    );
    assert_eq!(tag(&keys(&["key2:audit"])), Decision::ExplicitDeny);
    assert_eq!(tag(&MapFacts::default()), Decision::ExplicitDeny);

    let any_not = guarded(r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["env", "team"]}}"#);
    assert!(holds(&any_not, &keys(&["env", "cost"])));
    assert!(!holds(&any_not, &keys(&["env", "team"])));
    assert!(!holds(&any_not, &MapFacts::default()));

    let like = guarded(r#"{"ForAllValues:StringLike": {"aws:TagKeys": ["gantry:*", "env"]}}"#);
    assert!(holds(&like, &keys(&["gantry:a", "gantry:b", "env"])));
    assert!(!holds(&like, &keys(&["gantry:a", "envx"])));

    let if_exists = guarded(r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "env"}}"#);
    assert!(holds(&if_exists, &MapFacts::default()));
    assert!(!holds(&if_exists, &keys(&["team"])));

    // Without a set operator a multivalued key: a positive operator needs one
    // match, a negated one needs none.
    let plain = guarded(r#"{"StringEquals": {"aws:TagKeys": "env"}}"#);
    assert!(holds(&plain, &keys(&["team", "env"])));
    let plain_not = guarded(r#"{"StringNotEquals": {"aws:TagKeys": "env"}}"#);
    assert!(!holds(&plain_not, &keys(&["team", "env"])));
    assert!(holds(&plain_not, &keys(&["team", "cost"])));
}

#[test]
fn empty_condition_blocks() {
    let p = guarded("{}");
    assert!(holds(&p, &MapFacts::default()));
    let p = guarded(r#"{"StringEquals": {}}"#);
    assert!(holds(&p, &MapFacts::default()));
    let p = guarded(r#"{"StringEquals": {"ecs:cluster": []}}"#);
    assert!(!holds(&p, &one("ecs:cluster", "prod")));
    let p = guarded(r#"{"StringNotEquals": {"ecs:cluster": []}}"#);
    assert!(holds(&p, &one("ecs:cluster", "prod")));
}
