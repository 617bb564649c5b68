//! The AWS-managed policies ECS users attach by ARN (`arn:aws:iam::aws:policy/...`): built in,
//! read-only, with AWS's statements for the services gantry serves (the sources are in
//! `managed/SOURCES.txt`: large policies keep only the actions of gantry's services).

use serde::Deserialize;

/// One AWS-managed policy.
#[derive(Debug, Clone)]
pub struct AwsPolicy {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub description: String,
    pub default_version: String,
    /// Unix seconds of the default version.
    pub created: i64,
    /// The policy document, as JSON text.
    pub document: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    name: String,
    path: String,
    arn: String,
    description: String,
    default_version_id: String,
    version_create_date: String,
    document: serde_json::Value,
}

const FILES: &[&str] = &[
    include_str!("../managed/AdministratorAccess.json"),
    include_str!("../managed/ReadOnlyAccess.json"),
    include_str!("../managed/AmazonECS_FullAccess.json"),
    include_str!("../managed/service-role__AmazonECSTaskExecutionRolePolicy.json"),
    include_str!("../managed/AmazonEC2ContainerRegistryReadOnly.json"),
    include_str!("../managed/CloudWatchLogsFullAccess.json"),
    include_str!("../managed/SecretsManagerReadWrite.json"),
    include_str!("../managed/AmazonSSMReadOnlyAccess.json"),
];

/// `2017-11-16T18:48:22Z` as Unix seconds (0 when unreadable).
fn parse_time(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) =
        (n(0..4), n(5..7), n(8..10), n(11..13), n(14..16), n(17..19))
    else {
        return 0;
    };
    let Ok(month) = time::Month::try_from(mo as u8) else {
        return 0;
    };
    time::Date::from_calendar_date(y as i32, month, d as u8)
        .ok()
        .and_then(|date| date.with_hms(h as u8, mi as u8, se as u8).ok())
        .map(|t| t.assume_utc().unix_timestamp())
        .unwrap_or(0)
}

/// Every built-in AWS-managed policy.
pub fn all() -> Vec<AwsPolicy> {
    FILES
        .iter()
        .filter_map(|text| {
            let f: File = match serde_json::from_str(text) {
                Ok(f) => f,
                Err(e) => {
                    // The files are part of the build and checked by a test.
                    tracing::error!(error = %e, "a built-in managed policy does not parse");
                    return None;
                }
            };
            Some(AwsPolicy {
                name: f.name,
                path: f.path,
                arn: f.arn,
                description: f.description,
                default_version: f.default_version_id,
                created: parse_time(&f.version_create_date),
                document: f.document.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_policy_parses_and_compiles() {
        let all = all();
        assert_eq!(all.len(), FILES.len());
        for p in &all {
            assert!(p.arn.starts_with("arn:aws:iam::aws:policy/"), "{}", p.arn);
            assert!(
                p.arn.ends_with(&format!("{}{}", p.path, p.name)),
                "{}",
                p.arn
            );
            assert!(p.created > 0, "{}", p.name);
            if let Err(e) = gantry_policy::Policy::identity(&p.document) {
                panic!("{}: {e}", p.name);
            }
        }
    }
}
