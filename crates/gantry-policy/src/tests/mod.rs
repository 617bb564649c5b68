//! Unit tests: evaluation, conditions, trust policies, malformed documents.

mod conditions;
mod evaluation;
mod malformed;
mod trust;

use std::collections::HashMap;

use crate::{evaluate, Decision, Evaluation, Facts, Matched, Policy, Query, Who};

/// A request context backed by a map; keys are stored lower-cased.
#[derive(Debug, Default, Clone)]
pub(crate) struct MapFacts(HashMap<String, Vec<String>>);

impl MapFacts {
    pub(crate) fn new(pairs: &[(&str, &[&str])]) -> MapFacts {
        let mut facts = MapFacts::default();
        for (key, values) in pairs {
            facts.set(key, values);
        }
        facts
    }

    pub(crate) fn set(&mut self, key: &str, values: &[&str]) {
        self.0.insert(
            key.to_lowercase(),
            values.iter().map(|v| v.to_string()).collect(),
        );
    }
}

impl Facts for MapFacts {
    fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(&key.to_lowercase()).map(Vec::as_slice)
    }
}

pub(crate) const PROD: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
pub(crate) const DEV: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/dev";

/// Compiles an identity policy from its statements (Version 2012-10-17).
pub(crate) fn identity(statements: &str) -> Policy {
    let doc = format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#);
    match Policy::identity(&doc) {
        Ok(p) => p,
        Err(e) => panic!("{doc}: {e}"),
    }
}

/// Compiles a trust policy from its statements (Version 2012-10-17).
pub(crate) fn trust(statements: &str) -> Policy {
    let doc = format!(r#"{{"Version": "2012-10-17", "Statement": {statements}}}"#);
    match Policy::trust(&doc) {
        Ok(p) => p,
        Err(e) => panic!("{doc}: {e}"),
    }
}

pub(crate) fn eval(
    policies: &[&Policy],
    action: &str,
    resource: &str,
    facts: &MapFacts,
) -> Evaluation {
    evaluate(
        policies,
        &Query {
            action,
            resource,
            facts,
            principal: None,
        },
    )
}

pub(crate) fn decide(
    policies: &[&Policy],
    action: &str,
    resource: &str,
    facts: &MapFacts,
) -> Decision {
    eval(policies, action, resource, facts).decision
}

pub(crate) fn decide_as(
    policy: &Policy,
    who: &Who<'_>,
    action: &str,
    facts: &MapFacts,
) -> Decision {
    evaluate(
        &[policy],
        &Query {
            action,
            resource: "*",
            facts,
            principal: Some(who),
        },
    )
    .decision
}

pub(crate) fn matched(policy: usize, statement: usize) -> Matched {
    Matched { policy, statement }
}

/// Not a real test: a timing loop. Run with
/// `cargo test -p gantry-policy --release -- --ignored timing --nocapture`.
#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    let statements = (0..10)
        .map(|i| {
            format!(
                r#"{{"Sid": "S{i}", "Effect": "Allow",
                    "Action": ["ecs:Describe*", "ecs:ListTasks", "iam:GetRole{i}"],
                    "Resource": "arn:aws:ecs:us-east-1:123456789012:cluster/c{i}",
                    "Condition": {{"StringEquals": {{"aws:ResourceTag/team": "t{i}"}}}}}}"#
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let policies: Vec<Policy> = (0..10)
        .map(|_| identity(&format!("[{statements}]")))
        .collect();
    let refs: Vec<&Policy> = policies.iter().collect();
    let facts = MapFacts::new(&[("aws:username", &["dev"])]);
    let query = Query {
        action: "ecs:RunTask",
        resource: PROD,
        facts: &facts,
        principal: None,
    };
    assert_eq!(evaluate(&refs, &query).decision, Decision::ImplicitDeny);
    let rounds = 200_000u32;
    let start = Instant::now();
    let mut denied = 0u32;
    for _ in 0..rounds {
        let q = std::hint::black_box(&query);
        if evaluate(std::hint::black_box(&refs), q).decision == Decision::ImplicitDeny {
            denied += 1;
        }
    }
    let per = start.elapsed() / rounds;
    println!(
        "10 policies x 10 statements, nothing matches: {per:?} per evaluation ({denied} denied)"
    );

    // The same with action matching but resource not (resource patterns checked).
    let query = Query {
        action: "ecs:DescribeTasks",
        ..query
    };
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(evaluate(
            std::hint::black_box(&refs),
            std::hint::black_box(&query),
        ));
    }
    let per = start.elapsed() / rounds;
    println!(
        "10 policies x 10 statements, action matches, resource does not: {per:?} per evaluation"
    );
}
