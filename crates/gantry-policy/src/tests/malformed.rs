//! Malformed documents, each with IAM's message.

use super::*;

fn identity_error(doc: &str) -> String {
    match Policy::identity(doc) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(e) => e.to_string(),
    }
}

fn trust_error(doc: &str) -> String {
    match Policy::trust(doc) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(e) => e.message,
    }
}

fn statement_error(statement: &str) -> String {
    identity_error(&format!(
        r#"{{"Version": "2012-10-17", "Statement": [{statement}]}}"#
    ))
}

fn condition_error(condition: &str) -> String {
    statement_error(&format!(
        r#"{{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {condition}}}"#
    ))
}

const SYNTAX: &str = "Syntax errors in policy.";
const VENDOR: &str = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";

#[test]
fn bad_json() {
    for doc in [
        "",
        "{",
        "not json",
        "[]",
        "\"x\"",
        "null",
        "{\"Version\": \"2012-10-17\",}",
        "{\"a\":1} trailing",
    ] {
        assert_eq!(identity_error(doc), SYNTAX, "{doc:?}");
    }
    let deep = "[".repeat(10_000);
    assert_eq!(identity_error(&deep), SYNTAX);
    let deep_cond = format!("{}{}", "{\"a\":".repeat(5_000), "1");
    assert_eq!(identity_error(&deep_cond), SYNTAX);
}

#[test]
fn versions() {
    let msg = "Policy document must be version 2012-10-17 or greater.";
    for version in [
        "\"2012-10-18\"",
        "\"2012-10-17 \"",
        "\"\"",
        "2012",
        "null",
        "[\"2012-10-17\"]",
    ] {
        let doc = format!(
            r#"{{"Version": {version}, "Statement": {{"Effect": "Allow", "Action": "*", "Resource": "*"}}}}"#
        );
        assert_eq!(identity_error(&doc), msg, "{version}");
    }
}

#[test]
fn document_structure() {
    assert_eq!(
        identity_error(r#"{"Version": "2012-10-17"}"#),
        "Missing required field Statement"
    );
    assert_eq!(
        identity_error(r#"{"Version": "2012-10-17", "Statement": "x"}"#),
        SYNTAX
    );
    assert_eq!(
        identity_error(r#"{"Version": "2012-10-17", "Statement": ["x"]}"#),
        SYNTAX
    );
    assert_eq!(
        identity_error(r#"{"Version": "2012-10-17", "Statement": [], "Extra": 1}"#),
        SYNTAX
    );
    assert_eq!(
        identity_error(r#"{"Version": "2012-10-17", "Statement": [], "Id": 5}"#),
        SYNTAX
    );
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Action": "*", "Resource": "*", "Foo": 1}"#),
        SYNTAX
    );
    assert_eq!(
        statement_error(r#"{"Sid": 1, "Effect": "Allow", "Action": "*", "Resource": "*"}"#),
        SYNTAX
    );
    assert!(statement_error(
        r#"{"Sid": "has space", "Effect": "Allow", "Action": "*", "Resource": "*"}"#
    )
    .starts_with("Statement IDs (SID) must be alpha-numeric."));
    assert_eq!(
        statement_error(
            r#"{"Sid": "A", "Effect": "Allow", "Action": "*", "Resource": "*"}, {"Sid": "A", "Effect": "Deny", "Action": "*", "Resource": "*"}"#
        ),
        "Statement IDs (SID) in a single policy must be unique."
    );
}

#[test]
fn effects() {
    assert_eq!(
        statement_error(r#"{"Action": "*", "Resource": "*"}"#),
        "Missing required field Effect"
    );
    assert_eq!(
        statement_error(r#"{"Effect": "Permit", "Action": "*", "Resource": "*"}"#),
        "Invalid effect: Permit"
    );
    assert_eq!(
        statement_error(r#"{"Effect": "allow", "Action": "*", "Resource": "*"}"#),
        "Invalid effect: allow"
    );
    assert_eq!(
        statement_error(r#"{"Effect": true, "Action": "*", "Resource": "*"}"#),
        SYNTAX
    );
}

#[test]
fn actions() {
    let missing = "Policy statement must contain actions.";
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Resource": "*"}"#),
        missing
    );
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Action": [], "Resource": "*"}"#),
        missing
    );
    for action in [
        "\"RunTask\"",
        "\"\"",
        "\":RunTask\"",
        "\"ecs:\"",
        "[\"ecs:RunTask\", \"Describe*\"]",
    ] {
        let st = format!(r#"{{"Effect": "Allow", "Action": {action}, "Resource": "*"}}"#);
        assert_eq!(statement_error(&st), VENDOR, "{action}");
    }
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Action": 5, "Resource": "*"}"#),
        SYNTAX
    );
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Action": [5], "Resource": "*"}"#),
        SYNTAX
    );
    assert!(statement_error(
        r#"{"Effect": "Allow", "Action": "*", "NotAction": "*", "Resource": "*"}"#
    )
    .contains("both"));
}

#[test]
fn resources() {
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Action": "*"}"#),
        "Policy statement must contain resources."
    );
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Action": "*", "Resource": []}"#),
        "Policy statement must contain resources."
    );
    for (resource, shown) in [
        ("foo", "foo"),
        ("arn:aws:ecs", "arn:aws:ecs"),
        ("arn:aws:ecs:us-east-1:1", "arn:aws:ecs:us-east-1:1"),
        ("ARN:aws:ecs:::x", "ARN:aws:ecs:::x"),
        ("", ""),
        ("**", "**"),
    ] {
        let st =
            format!(r#"{{"Effect": "Allow", "Action": "*", "Resource": ["*", "{resource}"]}}"#);
        assert_eq!(
            statement_error(&st),
            format!("Resource {shown} must be in ARN format or \"*\".")
        );
    }
    assert!(statement_error(
        r#"{"Effect": "Allow", "Action": "*", "Resource": "*", "NotResource": "*"}"#
    )
    .contains("both"));
}

#[test]
fn principals() {
    let no_principal = "Policy document should not specify a principal.";
    assert_eq!(
        statement_error(r#"{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}"#),
        no_principal
    );
    assert_eq!(
        statement_error(
            r#"{"Effect": "Allow", "NotPrincipal": {"AWS": "123456789012"}, "Action": "*", "Resource": "*"}"#
        ),
        no_principal
    );
    let trust_doc = |st: &str| format!(r#"{{"Version": "2012-10-17", "Statement": {st}}}"#);
    assert_eq!(
        trust_error(&trust_doc(
            r#"{"Effect": "Allow", "Action": "sts:AssumeRole"}"#
        )),
        "Missing required field Principal"
    );
    assert_eq!(
        trust_error(&trust_doc(r#"{"Effect": "Allow", "Principal": "*"}"#)),
        "Policy statement must contain actions."
    );
    assert_eq!(
        trust_error(&trust_doc(
            r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/*"}, "Action": "sts:AssumeRole"}"#
        )),
        "Invalid principal in policy: \"AWS\":\"arn:aws:iam::123456789012:user/*\""
    );
    assert_eq!(
        trust_error(&trust_doc(
            r#"{"Effect": "Allow", "Principal": {"AWS": "dev"}, "Action": "sts:AssumeRole"}"#
        )),
        "Invalid principal in policy: \"AWS\":\"dev\""
    );
    assert!(trust_error(&trust_doc(
        r#"{"Effect": "Allow", "Principal": "dev", "Action": "sts:AssumeRole"}"#
    ))
    .starts_with("Invalid principal in policy"));
    assert!(trust_error(&trust_doc(
        r#"{"Effect": "Allow", "Principal": "*", "NotPrincipal": "*", "Action": "sts:AssumeRole"}"#
    ))
    .contains("both"));
}

#[test]
fn conditions() {
    assert_eq!(
        condition_error(r#"{"StringFoo": {"aws:username": "x"}}"#),
        "Invalid Condition type : StringFoo"
    );
    assert_eq!(
        condition_error(r#"{"NullIfExists": {"aws:username": "true"}}"#),
        "Invalid Condition type : NullIfExists"
    );
    assert_eq!(
        condition_error(r#"{"ForSomeValues:StringEquals": {"aws:username": "x"}}"#),
        "Invalid Condition type : ForSomeValues:StringEquals"
    );
    assert_eq!(
        condition_error(r#"{"StringEquals": {"username": "x"}}"#),
        VENDOR
    );
    assert_eq!(
        condition_error(r#"{"StringEquals": {":username": "x"}}"#),
        VENDOR
    );
    assert_eq!(condition_error(r#""x""#), SYNTAX);
    assert_eq!(condition_error(r#"{"StringEquals": "x"}"#), SYNTAX);
    assert_eq!(
        condition_error(r#"{"StringEquals": {"aws:username": null}}"#),
        SYNTAX
    );
    assert_eq!(
        condition_error(r#"{"StringEquals": {"aws:username": [{"a": 1}]}}"#),
        SYNTAX
    );
    assert_eq!(
        condition_error(r#"{"StringEquals": {"aws:username": [["a"]]}}"#),
        SYNTAX
    );
}

#[test]
fn condition_values() {
    assert_eq!(
        condition_error(r#"{"DateLessThan": {"aws:CurrentTime": "next tuesday"}}"#),
        "Invalid date in condition DateLessThan : next tuesday"
    );
    assert_eq!(
        condition_error(
            r#"{"DateGreaterThan": {"aws:CurrentTime": ["2026-01-01", "2026-02-30"]}}"#
        ),
        "Invalid date in condition DateGreaterThan : 2026-02-30"
    );
    assert_eq!(
        condition_error(r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}"#),
        "Invalid IP address or CIDR range in condition IpAddress : 10.0.0.0/33"
    );
    assert_eq!(
        condition_error(r#"{"NotIpAddressIfExists": {"aws:SourceIp": "localhost"}}"#),
        "Invalid IP address or CIDR range in condition NotIpAddressIfExists : localhost"
    );
    assert_eq!(
        condition_error(r#"{"NumericLessThan": {"s3:max-keys": "ten"}}"#),
        "Invalid number in condition NumericLessThan : ten"
    );
    assert_eq!(
        condition_error(r#"{"NumericEquals": {"s3:max-keys": "NaN"}}"#),
        "Invalid number in condition NumericEquals : NaN"
    );
    assert_eq!(
        condition_error(r#"{"NumericEquals": {"s3:max-keys": "${aws:username}"}}"#),
        "Invalid number in condition NumericEquals : ${aws:username}"
    );
    assert_eq!(
        condition_error(r#"{"Bool": {"aws:SecureTransport": "yes"}}"#),
        "Invalid boolean in condition Bool : yes"
    );
    assert_eq!(
        condition_error(r#"{"Null": {"aws:TokenIssueTime": "maybe"}}"#),
        "Invalid boolean in condition Null : maybe"
    );
}

#[test]
fn garbage_never_panics() {
    let fragments = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"Version\"",
        "\"2012-10-17\"",
        "\"Statement\"",
        "\"Effect\"",
        "\"Allow\"",
        "\"Action\"",
        "\"*\"",
        "\"Resource\"",
        "\"Condition\"",
        "\"StringLike\"",
        "\"aws:x\"",
        "\"${aws:x\"",
        "\"${}\"",
        "\"arn:${a:b}:::\"",
        "1e999",
        "-0",
        "true",
        "null",
        "\"\\u0000\"",
        "\"é\"",
    ];
    // A deterministic pseudo-random walk over the fragments.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        let mut doc = String::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            doc.push_str(fragments[(seed % fragments.len() as u64) as usize]);
        }
        let _ = Policy::identity(&doc);
        let _ = Policy::trust(&doc);
    }
    // Odd but valid documents.
    let odd = r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "é:*", "Resource": "arn:${aws:x}:${:${*}:::${aws:username, 'a'"}}"#;
    let p = Policy::identity(odd).unwrap_or_else(|e| panic!("{e}"));
    let _ = eval(&[&p], "é:x", "arn:a:b:c:d:e", &MapFacts::default());
}

#[test]
fn statement_level_id_is_unknown() {
    assert_eq!(
        statement_error(r#"{"Id": "x", "Effect": "Allow", "Action": "*", "Resource": "*"}"#),
        SYNTAX
    );
}
