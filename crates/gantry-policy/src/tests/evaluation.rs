//! Actions, resources, NotAction/NotResource, variables and the deny/allow rule.

use super::*;

#[test]
fn default_deny() {
    let none = MapFacts::default();
    assert_eq!(
        decide(&[], "ecs:RunTask", PROD, &none),
        Decision::ImplicitDeny
    );
    let p = identity(r#"[{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}]"#);
    let e = eval(&[&p], "ecs:RunTask", PROD, &none);
    assert_eq!(e.decision, Decision::ImplicitDeny);
    assert!(e.matched.is_empty());
    assert_eq!(Decision::ImplicitDeny.as_str(), "implicitDeny");
    assert_eq!(Decision::Allowed.as_str(), "allowed");
    assert_eq!(Decision::ExplicitDeny.to_string(), "explicitDeny");
}

#[test]
fn wildcard_actions() {
    let none = MapFacts::default();
    let all_ecs = identity(r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}"#);
    assert_eq!(
        decide(&[&all_ecs], "ecs:RunTask", PROD, &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&all_ecs], "ECS:runtask", PROD, &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&all_ecs], "iam:GetRole", "*", &none),
        Decision::ImplicitDeny
    );

    let describe = identity(r#"{"Effect": "Allow", "Action": ["ecs:Describe*"], "Resource": "*"}"#);
    assert_eq!(
        decide(&[&describe], "ecs:DescribeTasks", PROD, &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&describe], "ecs:describeclusters", "*", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&describe], "ecs:ListTasks", PROD, &none),
        Decision::ImplicitDeny
    );

    let everything = identity(r#"{"Effect": "Allow", "Action": "*", "Resource": "*"}"#);
    assert_eq!(
        decide(&[&everything], "iam:CreateUser", "*", &none),
        Decision::Allowed
    );

    let middle = identity(r#"{"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "*"}"#);
    assert_eq!(
        decide(&[&middle], "iam:CreateAccessKey", "*", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&middle], "iam:ListAccessKeys", "*", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&middle], "iam:ListUsers", "*", &none),
        Decision::ImplicitDeny
    );

    let question = identity(r#"{"Effect": "Allow", "Action": "ecs:?unTask", "Resource": "*"}"#);
    assert_eq!(
        decide(&[&question], "ecs:RunTask", "*", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&question], "ecs:RRunTask", "*", &none),
        Decision::ImplicitDeny
    );
}

#[test]
fn explicit_deny_beats_allow_across_policies() {
    let none = MapFacts::default();
    let allow = identity(
        r#"[{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
                             {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "*"}]"#,
    );
    let deny = identity(
        r#"[{"Effect": "Allow", "Action": "iam:*", "Resource": "*"},
                            {"Sid": "NoRun", "Effect": "Deny", "Action": "ecs:RunTask", "Resource": "*"}]"#,
    );
    let e = eval(&[&allow, &deny], "ecs:RunTask", PROD, &none);
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.matched, vec![matched(1, 1)]);
    assert_eq!(deny.sid(1), Some("NoRun"));
    assert_eq!(deny.sid(0), None);
    assert_eq!(deny.sid(7), None);
    // Order does not matter.
    let e = eval(&[&deny, &allow], "ecs:RunTask", PROD, &none);
    assert_eq!(e.decision, Decision::ExplicitDeny);
    assert_eq!(e.matched, vec![matched(0, 1)]);
    // Allow lists every matching Allow statement.
    let e = eval(&[&allow, &deny], "ecs:StopTask", PROD, &none);
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.matched, vec![matched(0, 0)]);
    let e = eval(&[&allow], "ecs:RunTask", PROD, &none);
    assert_eq!(e.matched, vec![matched(0, 0), matched(0, 1)]);
    // A deny alone does not allow anything else.
    assert_eq!(
        decide(&[&deny], "ecs:StopTask", PROD, &none),
        Decision::ImplicitDeny
    );
}

#[test]
fn not_action() {
    let none = MapFacts::default();
    let p =
        identity(r#"{"Effect": "Allow", "NotAction": ["iam:*", "ecs:Delete*"], "Resource": "*"}"#);
    assert_eq!(decide(&[&p], "ecs:RunTask", PROD, &none), Decision::Allowed);
    assert_eq!(
        decide(&[&p], "ecs:DeleteCluster", PROD, &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "iam:CreateUser", "*", &none),
        Decision::ImplicitDeny
    );
    let deny = identity(r#"{"Effect": "Deny", "NotAction": "ecs:Describe*", "Resource": "*"}"#);
    assert_eq!(
        decide(&[&p, &deny], "ecs:RunTask", PROD, &none),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(&[&p, &deny], "ecs:DescribeTasks", PROD, &none),
        Decision::Allowed
    );
}

#[test]
fn not_resource() {
    let none = MapFacts::default();
    let p = identity(&format!(
        r#"{{"Effect": "Allow", "Action": "ecs:*", "NotResource": ["{PROD}", "arn:aws:ecs:*:*:cluster/secret-*"]}}"#
    ));
    assert_eq!(decide(&[&p], "ecs:RunTask", DEV, &none), Decision::Allowed);
    assert_eq!(
        decide(&[&p], "ecs:RunTask", PROD, &none),
        Decision::ImplicitDeny
    );
    let secret = "arn:aws:ecs:eu-west-1:123456789012:cluster/secret-x";
    assert_eq!(
        decide(&[&p], "ecs:RunTask", secret, &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "ecs:ListClusters", "*", &none),
        Decision::Allowed
    );
}

#[test]
fn resource_scoped_to_one_cluster() {
    let none = MapFacts::default();
    let p = identity(&format!(
        r#"{{"Effect": "Allow", "Action": "ecs:*", "Resource": "{PROD}"}}"#
    ));
    assert_eq!(decide(&[&p], "ecs:RunTask", PROD, &none), Decision::Allowed);
    assert_eq!(
        decide(&[&p], "ecs:RunTask", DEV, &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "ecs:ListClusters", "*", &none),
        Decision::ImplicitDeny
    );
    let other_account = "arn:aws:ecs:us-east-1:999999999999:cluster/prod";
    assert_eq!(
        decide(&[&p], "ecs:RunTask", other_account, &none),
        Decision::ImplicitDeny
    );
    // Resources are case-sensitive.
    let upper = "arn:aws:ecs:us-east-1:123456789012:cluster/Prod";
    assert_eq!(
        decide(&[&p], "ecs:RunTask", upper, &none),
        Decision::ImplicitDeny
    );
}

#[test]
fn segment_wise_arns() {
    let none = MapFacts::default();
    let p = identity(
        r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:*:123456789012:cluster/*"}"#,
    );
    assert_eq!(decide(&[&p], "ecs:RunTask", PROD, &none), Decision::Allowed);
    assert_eq!(
        decide(
            &[&p],
            "ecs:RunTask",
            "arn:aws:ecs:eu-west-1:123456789012:cluster/x",
            &none
        ),
        Decision::Allowed
    );
    // `*` in the region segment does not run into the account segment.
    let tricky = "arn:aws:ecs:us-east-1:999999999999:x:123456789012:cluster/prod";
    assert_eq!(
        decide(&[&p], "ecs:RunTask", tricky, &none),
        Decision::ImplicitDeny
    );
    // The resource part may hold colons and `*` there spans them.
    let colons = identity(
        r#"{"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:us-east-1:123456789012:log-group:app*"}"#,
    );
    let stream = "arn:aws:logs:us-east-1:123456789012:log-group:app:log-stream:abc";
    assert_eq!(
        decide(&[&colons], "logs:PutLogEvents", stream, &none),
        Decision::Allowed
    );
    // Empty segments.
    let s3 =
        identity(r#"{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/*"}"#);
    assert_eq!(
        decide(&[&s3], "s3:GetObject", "arn:aws:s3:::bucket/a/b", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(
            &[&s3],
            "s3:GetObject",
            "arn:aws:s3:us-east-1::bucket/a",
            &none
        ),
        Decision::ImplicitDeny
    );
    // Non-ARN request resources only match "*".
    assert_eq!(
        decide(&[&s3], "s3:GetObject", "bucket/a", &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&s3], "s3:ListAllMyBuckets", "*", &none),
        Decision::ImplicitDeny
    );
    // `?` matches exactly one character.
    let q = identity(
        r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "arn:aws:ecs:us-east-?:123456789012:cluster/pro?"}"#,
    );
    assert_eq!(decide(&[&q], "ecs:RunTask", PROD, &none), Decision::Allowed);
    assert_eq!(
        decide(
            &[&q],
            "ecs:RunTask",
            "arn:aws:ecs:us-east-12:123456789012:cluster/prod",
            &none
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &[&q],
            "ecs:RunTask",
            "arn:aws:ecs:us-east-1:123456789012:cluster/pro",
            &none
        ),
        Decision::ImplicitDeny
    );
}

#[test]
fn username_variable_in_resource() {
    let p = identity(
        r#"{"Effect": "Allow", "Action": "iam:*AccessKey*", "Resource": "arn:aws:iam::123456789012:user/${aws:username}"}"#,
    );
    let dev = MapFacts::new(&[("aws:username", &["dev"])]);
    let me = "arn:aws:iam::123456789012:user/dev";
    let other = "arn:aws:iam::123456789012:user/ops";
    assert_eq!(
        decide(&[&p], "iam:CreateAccessKey", me, &dev),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&p], "iam:CreateAccessKey", other, &dev),
        Decision::ImplicitDeny
    );
    // No aws:username (e.g. a role session): matches nothing.
    let none = MapFacts::default();
    assert_eq!(
        decide(&[&p], "iam:CreateAccessKey", me, &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &[&p],
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/${aws:username}",
            &none
        ),
        Decision::ImplicitDeny
    );
    // A value holding `*` is literal, not a wildcard.
    let star = MapFacts::new(&[("aws:username", &["*"])]);
    assert_eq!(
        decide(&[&p], "iam:CreateAccessKey", me, &star),
        Decision::ImplicitDeny
    );
}

#[test]
fn variables_need_version_2012() {
    let doc = r#"{"Statement": {"Effect": "Allow", "Action": "iam:*", "Resource": "arn:aws:iam::123456789012:user/${aws:username}"}}"#;
    let old = Policy::identity(doc).unwrap_or_else(|e| panic!("{e}"));
    let dev = MapFacts::new(&[("aws:username", &["dev"])]);
    let me = "arn:aws:iam::123456789012:user/dev";
    assert_eq!(
        decide(&[&old], "iam:GetUser", me, &dev),
        Decision::ImplicitDeny
    );
    let literal = "arn:aws:iam::123456789012:user/${aws:username}";
    assert_eq!(
        decide(&[&old], "iam:GetUser", literal, &dev),
        Decision::Allowed
    );
    let explicit_old = doc.replacen('{', r#"{"Version": "2008-10-17", "#, 1);
    let old = Policy::identity(&explicit_old).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        decide(&[&old], "iam:GetUser", literal, &dev),
        Decision::Allowed
    );
}

#[test]
fn variable_escapes_and_defaults() {
    let p = identity(
        r#"{"Effect": "Allow", "Action": "s3:*", "Resource": [
        "arn:aws:s3:::b/${*}${?}${$}",
        "arn:aws:s3:::b/home/${aws:userid, 'anonymous'}/*",
        "arn:aws:s3:::b/team/${aws:PrincipalTag/Team}"]}"#,
    );
    let none = MapFacts::default();
    assert_eq!(
        decide(&[&p], "s3:GetObject", "arn:aws:s3:::b/*?$", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&p], "s3:GetObject", "arn:aws:s3:::b/x?$", &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(
            &[&p],
            "s3:GetObject",
            "arn:aws:s3:::b/home/anonymous/f",
            &none
        ),
        Decision::Allowed
    );
    let facts = MapFacts::new(&[
        ("aws:userid", &["AIDA1"]),
        ("aws:principaltag/team", &["red"]),
    ]);
    assert_eq!(
        decide(&[&p], "s3:GetObject", "arn:aws:s3:::b/home/AIDA1/f", &facts),
        Decision::Allowed
    );
    assert_eq!(
        decide(
            &[&p],
            "s3:GetObject",
            "arn:aws:s3:::b/home/anonymous/f",
            &facts
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&[&p], "s3:GetObject", "arn:aws:s3:::b/team/red", &facts),
        Decision::Allowed
    );
    assert_eq!(
        decide(&[&p], "s3:GetObject", "arn:aws:s3:::b/team/blue", &facts),
        Decision::ImplicitDeny
    );
}

#[test]
fn statement_and_count() {
    let p = identity(
        r#"[{"Sid": "A", "Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
                         {"Sid": "B", "Effect": "Deny", "Action": "ecs:*", "Resource": "*"}]"#,
    );
    assert_eq!(p.statement_count(), 2);
    assert_eq!(p.sid(0), Some("A"));
    let single = identity(r#"{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}"#);
    assert_eq!(single.statement_count(), 1);
    let empty = identity("[]");
    assert_eq!(empty.statement_count(), 0);
    fn assert_traits<T: Clone + std::fmt::Debug + Send + Sync>() {}
    assert_traits::<Policy>();
    let cloned = p.clone();
    assert_eq!(cloned.statement_count(), 2);
}

#[test]
fn odd_requests_do_not_panic() {
    let p = identity(
        r#"[{"Effect": "Allow", "Action": ["ecs:*", "é:?*ü"], "Resource": ["arn:aws:ecs:*:*:cluster/${aws:username}?*", "*"],
        "Condition": {"StringLike": {"aws:username": "*${aws:username}*"}}}]"#,
    );
    let facts = MapFacts::new(&[("aws:username", &["ü*?"])]);
    for action in [
        "",
        ":",
        "é",
        "ecs:",
        "ecs:é",
        "\u{0}",
        "ECS:RUNTASK",
        "é:xü",
        "é:ü",
    ] {
        for resource in [
            "",
            "*",
            "arn:",
            "arn:::::",
            "arn:aws:ecs:::cluster/ü*?x",
            "é",
            ":::::::::",
        ] {
            let _ = eval(&[&p], action, resource, &facts);
        }
    }
    assert_eq!(decide(&[&p], "é:xü", "*", &facts), Decision::Allowed);
}
