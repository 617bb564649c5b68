//! Trust policies: the Principal and NotPrincipal elements.

use super::*;

const ACCOUNT: &str = "123456789012";

fn user(name: &str) -> Vec<String> {
    vec![format!("arn:aws:iam::{ACCOUNT}:user/{name}")]
}

fn role_session(role: &str, session: &str) -> Vec<String> {
    vec![
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"),
        format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
    ]
}

fn aws<'a>(account: &'a str, arns: &'a [String]) -> Who<'a> {
    Who {
        account,
        aws: arns,
        service: None,
    }
}

fn service(name: &str) -> Who<'_> {
    Who {
        account: "",
        aws: &[],
        service: Some(name),
    }
}

fn assume(principal: &str) -> Policy {
    trust(&format!(
        r#"{{"Effect": "Allow", "Principal": {principal}, "Action": "sts:AssumeRole"}}"#
    ))
}

#[test]
fn service_principal() {
    let p = assume(r#"{"Service": "ecs-tasks.amazonaws.com"}"#);
    let none = MapFacts::default();
    assert_eq!(
        decide_as(
            &p,
            &service("ecs-tasks.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ),
        Decision::Allowed
    );
    assert_eq!(
        decide_as(
            &p,
            &service("ecs-tasks.amazonaws.com"),
            "sts:TagSession",
            &none
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_as(&p, &service("ec2.amazonaws.com"), "sts:AssumeRole", &none),
        Decision::ImplicitDeny
    );
    let dev = user("dev");
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
        Decision::ImplicitDeny
    );
    // No principal given: nothing but "*" matches.
    let e = evaluate(
        &[&p],
        &Query {
            action: "sts:AssumeRole",
            resource: "*",
            facts: &none,
            principal: None,
        },
    );
    assert_eq!(e.decision, Decision::ImplicitDeny);
    let several = assume(r#"{"Service": ["ecs.amazonaws.com", "ecs-tasks.amazonaws.com"]}"#);
    assert_eq!(
        decide_as(
            &several,
            &service("ecs-tasks.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ),
        Decision::Allowed
    );
}

#[test]
fn account_principals() {
    let none = MapFacts::default();
    let dev = user("dev");
    let session = role_session("r", "s");
    let stranger = vec!["arn:aws:iam::999999999999:user/dev".to_string()];
    for principal in [
        r#"{"AWS": "arn:aws:iam::123456789012:root"}"#,
        r#"{"AWS": "123456789012"}"#,
        r#"{"AWS": ["999999999999", "123456789012"]}"#,
    ] {
        let p = assume(principal);
        assert_eq!(
            decide_as(&p, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
            Decision::Allowed,
            "{principal}"
        );
        assert_eq!(
            decide_as(&p, &aws(ACCOUNT, &session), "sts:AssumeRole", &none),
            Decision::Allowed
        );
        assert_eq!(
            decide_as(&p, &aws("999999999999", &stranger), "sts:AssumeRole", &none),
            if principal.contains("999999999999") {
                Decision::Allowed
            } else {
                Decision::ImplicitDeny
            }
        );
        assert_eq!(
            decide_as(
                &p,
                &service("ecs-tasks.amazonaws.com"),
                "sts:AssumeRole",
                &none
            ),
            Decision::ImplicitDeny
        );
    }
    // A root caller named only by its root ARN.
    let root = vec![format!("arn:aws:iam::{ACCOUNT}:root")];
    let p = assume(r#"{"AWS": "123456789012"}"#);
    assert_eq!(
        decide_as(&p, &aws("", &root), "sts:AssumeRole", &none),
        Decision::Allowed
    );
}

#[test]
fn arn_principals() {
    let none = MapFacts::default();
    let p = assume(r#"{"AWS": "arn:aws:iam::123456789012:user/dev"}"#);
    let dev = user("dev");
    let ops = user("ops");
    let session = role_session("dev", "s");
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &ops), "sts:AssumeRole", &none),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &session), "sts:AssumeRole", &none),
        Decision::ImplicitDeny
    );
    let role = assume(r#"{"AWS": "arn:aws:iam::123456789012:role/dev"}"#);
    assert_eq!(
        decide_as(&role, &aws(ACCOUNT, &session), "sts:AssumeRole", &none),
        Decision::Allowed
    );
    let exact_session = assume(r#"{"AWS": "arn:aws:sts::123456789012:assumed-role/dev/s"}"#);
    assert_eq!(
        decide_as(
            &exact_session,
            &aws(ACCOUNT, &session),
            "sts:AssumeRole",
            &none
        ),
        Decision::Allowed
    );
}

#[test]
fn everyone() {
    let none = MapFacts::default();
    let dev = user("dev");
    for principal in [r#""*""#, r#"{"AWS": "*"}"#] {
        let p = assume(principal);
        assert_eq!(
            decide_as(&p, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
            Decision::Allowed
        );
        assert_eq!(
            decide_as(
                &p,
                &service("ecs-tasks.amazonaws.com"),
                "sts:AssumeRole",
                &none
            ),
            Decision::Allowed
        );
    }
    let p = assume(r#""*""#);
    let anonymous = evaluate(
        &[&p],
        &Query {
            action: "sts:AssumeRole",
            resource: "*",
            facts: &none,
            principal: None,
        },
    );
    assert_eq!(anonymous.decision, Decision::Allowed);
    // NotPrincipal "*" / {"AWS": "*"} exempts everyone, anonymous callers too.
    for not in [r#""*""#, r#"{"AWS": "*"}"#] {
        let p = trust(&format!(
            r#"{{"Effect": "Allow", "NotPrincipal": {not}, "Action": "sts:AssumeRole"}}"#
        ));
        assert_eq!(
            decide_as(&p, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
            Decision::ImplicitDeny
        );
        let anonymous = evaluate(
            &[&p],
            &Query {
                action: "sts:AssumeRole",
                resource: "*",
                facts: &none,
                principal: None,
            },
        );
        assert_eq!(anonymous.decision, Decision::ImplicitDeny, "{not}");
    }
}

#[test]
fn not_principal() {
    let none = MapFacts::default();
    let p = trust(
        r#"[{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": ["arn:aws:iam::123456789012:user/dev", "arn:aws:iam::123456789012:root"]},
             "Action": "sts:AssumeRole"}]"#,
    );
    let dev = user("dev");
    let ops = user("ops");
    let root = vec![format!("arn:aws:iam::{ACCOUNT}:root")];
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
        Decision::Allowed
    );
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &root), "sts:AssumeRole", &none),
        Decision::Allowed
    );
    // Naming the account in NotPrincipal exempts its root, not all its users.
    assert_eq!(
        decide_as(&p, &aws(ACCOUNT, &ops), "sts:AssumeRole", &none),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide_as(
            &p,
            &service("ecs-tasks.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ),
        Decision::ExplicitDeny
    );

    let allow_but = trust(
        r#"{"Effect": "Allow", "NotPrincipal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}"#,
    );
    assert_eq!(
        decide_as(
            &allow_but,
            &service("ecs-tasks.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ),
        Decision::Allowed
    );
    assert_eq!(
        decide_as(
            &allow_but,
            &service("ec2.amazonaws.com"),
            "sts:AssumeRole",
            &none
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide_as(&allow_but, &aws(ACCOUNT, &dev), "sts:AssumeRole", &none),
        Decision::Allowed
    );
}

#[test]
fn trust_conditions_and_resources() {
    let p = trust(
        r#"{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:ecs:us-east-1:123456789012:*"},
                          "StringEquals": {"aws:SourceAccount": "123456789012"}}}"#,
    );
    let ok = MapFacts::new(&[
        (
            "aws:sourcearn",
            &["arn:aws:ecs:us-east-1:123456789012:task/c/abc"],
        ),
        ("aws:sourceaccount", &["123456789012"]),
    ]);
    let who = service("ecs-tasks.amazonaws.com");
    assert_eq!(
        decide_as(&p, &who, "sts:AssumeRole", &ok),
        Decision::Allowed
    );
    assert_eq!(
        decide_as(&p, &who, "sts:TagSession", &ok),
        Decision::Allowed
    );
    let wrong = MapFacts::new(&[(
        "aws:sourcearn",
        &["arn:aws:ecs:us-east-1:999999999999:task/c/abc"],
    )]);
    assert_eq!(
        decide_as(&p, &who, "sts:AssumeRole", &wrong),
        Decision::ImplicitDeny
    );

    // A trust statement may carry a Resource; it is matched like any other.
    let with_resource = trust(
        r#"{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole", "Resource": "*"}"#,
    );
    assert_eq!(
        decide_as(&with_resource, &who, "sts:AssumeRole", &ok),
        Decision::Allowed
    );
    // Identity policies ignore the principal of a query.
    let id = identity(r#"{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}"#);
    assert_eq!(
        decide_as(&id, &who, "sts:AssumeRole", &ok),
        Decision::Allowed
    );
}
