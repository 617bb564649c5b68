//! Log groups and streams: create, delete, describe (with CloudWatch's paging), retention and
//! tags.

use crate::store::{sql, Group, StreamOrder};
use crate::{already_exists, invalid, not_found, now_ms, Logs};
use gantry_api::logs::*;
use gantry_core::{Gate, ServiceError};
use std::collections::BTreeMap;

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[i32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

fn group_missing() -> ServiceError {
    not_found("The specified log group does not exist.")
}

fn stream_missing() -> ServiceError {
    not_found("The specified log stream does not exist.")
}

/// CloudWatch's rule for group names: 1 to 512 of `[.\-_/#A-Za-z0-9]`.
pub fn check_group_name(name: &str) -> Result<(), ServiceError> {
    let ok = (1..=512).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/#".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )))
    }
}

/// Stream names: 1 to 512 characters, no `:` or `*`.
pub fn check_stream_name(name: &str) -> Result<(), ServiceError> {
    if (1..=512).contains(&name.len()) && !name.contains([':', '*']) {
        Ok(())
    } else {
        Err(invalid(format!(
            "1 validation error detected: Value '{name}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )))
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ServiceError> {
    if tags.len() > 50 {
        return Err(invalid("A log group can have at most 50 tags."));
    }
    for (k, v) in tags {
        if k.is_empty()
            || k.chars().count() > 128
            || v.chars().count() > 256
            || k.starts_with("aws:")
        {
            return Err(invalid(format!(
                "Invalid tag {k:?}: keys are 1 to 128 characters, not starting with aws:, and values at most 256."
            )));
        }
    }
    Ok(())
}

/// A page size: `limit` within `1..=max`, `max` when absent.
pub(crate) fn page(limit: Option<i32>, max: usize) -> Result<usize, ServiceError> {
    match limit {
        None => Ok(max),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (a name or an ARN).
pub(crate) fn group_named(
    name: Option<&String>,
    identifier: Option<&String>,
) -> Result<String, ServiceError> {
    match (name, identifier) {
        (Some(n), None) => Ok(n.clone()),
        (None, Some(i)) => Ok(i
            .split(":log-group:")
            .nth(1)
            .map(|rest| rest.trim_end_matches(":*").to_string())
            .unwrap_or_else(|| i.clone())),
        (Some(_), Some(_)) => Err(invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (None, None) => Err(invalid(
            "Either logGroupName or logGroupIdentifier must be specified.",
        )),
    }
}

impl Logs {
    fn group_shape(&self, g: &Group) -> LogGroup {
        let arn = self.group_arn(&g.name);
        LogGroup {
            log_group_name: Some(g.name.clone()),
            creation_time: Some(g.created),
            retention_in_days: g.retention_days,
            metric_filter_count: Some(0),
            arn: Some(format!("{arn}:*")),
            stored_bytes: Some(g.stored_bytes),
            kms_key_id: g.kms_key_id.clone(),
            log_group_class: Some(
                g.class
                    .as_deref()
                    .and_then(|c| LogGroupClass::ALL.iter().find(|x| x.as_str() == c).copied())
                    .unwrap_or(LogGroupClass::Standard),
            ),
            log_group_arn: Some(arn),
            ..LogGroup::default()
        }
    }

    /// The group of that name, or ResourceNotFoundException.
    pub(crate) async fn existing_group(&self, name: &str) -> Result<Group, ServiceError> {
        let n = name.to_string();
        self.db(move |c| sql::group(c, &n))
            .await?
            .ok_or_else(group_missing)
    }

    pub async fn create_group(
        &self,
        req: CreateLogGroupRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        check_group_name(&req.log_group_name)?;
        let tags = req.tags.unwrap_or_default();
        check_tags(&tags)?;
        let ask = gantry_core::Ask::on(vec![self.group_arn(&req.log_group_name)])
            .request_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        gate.authorize_ask("logs:CreateLogGroup", &ask, &gantry_core::NoTags)?;
        let g = Group {
            id: 0,
            name: req.log_group_name.clone(),
            created: now_ms(),
            retention_days: None,
            kms_key_id: req.kms_key_id,
            class: req.log_group_class.map(|c| c.as_str().to_string()),
            tags,
            stored_bytes: 0,
        };
        let created = self.db(move |c| sql::create_group(c, &g)).await?;
        if !created {
            return Err(already_exists("log group"));
        }
        Ok(serde_json::json!({}))
    }

    pub async fn delete_group(
        &self,
        req: DeleteLogGroupRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        gate.authorize(
            "logs:DeleteLogGroup",
            &[self.group_arn(&req.log_group_name)],
        )?;
        let name = req.log_group_name;
        let deleted = self.db(move |c| sql::delete_group(c, &name)).await?;
        if !deleted {
            return Err(group_missing());
        }
        Ok(serde_json::json!({}))
    }

    pub async fn describe_groups(
        &self,
        req: DescribeLogGroupsRequest,
        gate: &Gate<'_>,
    ) -> Result<DescribeLogGroupsResponse, ServiceError> {
        gate.authorize("logs:DescribeLogGroups", &[self.group_arn("*")])?;
        if req.log_group_name_prefix.is_some() && req.log_group_name_pattern.is_some() {
            return Err(invalid(
                "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
            ));
        }
        let limit = page(req.limit, 50)?;
        let prefix = req.log_group_name_prefix.clone();
        let pattern = req.log_group_name_pattern.clone().map(|p| p.to_lowercase());
        let identifiers = req.log_group_identifiers.clone();
        let after = req.next_token.clone();
        let class = req.log_group_class.map(|c| c.as_str().to_string());
        // One more than a page, to know whether there is a next one.
        let mut found = self
            .db(move |c| {
                let keep = |name: &str| {
                    pattern
                        .as_ref()
                        .is_none_or(|p| name.to_lowercase().contains(p.as_str()))
                        && identifiers.as_ref().is_none_or(|ids| {
                            ids.iter()
                                .any(|i| i == name || i.ends_with(&format!(":log-group:{name}")))
                        })
                };
                sql::groups(c, after.as_deref(), prefix.as_deref(), limit + 1, &keep)
            })
            .await?;
        if let Some(class) = class {
            found.retain(|g| g.class.as_deref().unwrap_or("STANDARD") == class);
        }
        let next = (found.len() > limit).then(|| found[limit - 1].name.clone());
        found.truncate(limit);
        Ok(DescribeLogGroupsResponse {
            log_groups: Some(found.iter().map(|g| self.group_shape(g)).collect()),
            next_token: next,
        })
    }

    pub async fn create_stream(
        &self,
        req: CreateLogStreamRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        check_stream_name(&req.log_stream_name)?;
        gate.authorize(
            "logs:CreateLogStream",
            &[self.stream_arn(&req.log_group_name, &req.log_stream_name)],
        )?;
        let g = self.existing_group(&req.log_group_name).await?;
        let name = req.log_stream_name;
        let created = self
            .db(move |c| sql::create_stream(c, g.id, &name, now_ms()))
            .await?;
        if !created {
            return Err(already_exists("log stream"));
        }
        Ok(serde_json::json!({}))
    }

    pub async fn delete_stream(
        &self,
        req: DeleteLogStreamRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        gate.authorize(
            "logs:DeleteLogStream",
            &[self.stream_arn(&req.log_group_name, &req.log_stream_name)],
        )?;
        let g = self.existing_group(&req.log_group_name).await?;
        let name = req.log_stream_name;
        let done = self
            .db(move |c| match sql::stream(c, g.id, &name)? {
                Some(s) => sql::delete_stream(c, s.id).map(|_| true),
                None => Ok(false),
            })
            .await?;
        if !done {
            return Err(stream_missing());
        }
        Ok(serde_json::json!({}))
    }

    pub async fn describe_streams(
        &self,
        req: DescribeLogStreamsRequest,
        gate: &Gate<'_>,
    ) -> Result<DescribeLogStreamsResponse, ServiceError> {
        let group = group_named(
            req.log_group_name.as_ref(),
            req.log_group_identifier.as_ref(),
        )?;
        gate.authorize("logs:DescribeLogStreams", &[self.group_arn(&group)])?;
        let order = match req.order_by {
            Some(OrderBy::LastEventTime) => StreamOrder::LastEventTime,
            _ => StreamOrder::Name,
        };
        if order == StreamOrder::LastEventTime && req.log_stream_name_prefix.is_some() {
            return Err(invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let limit = page(req.limit, 50)?;
        let offset: usize = match &req.next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("s/")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        };
        let g = self.existing_group(&group).await?;
        let prefix = req.log_stream_name_prefix.clone();
        let descending = req.descending.unwrap_or(false);
        let mut found = self
            .db(move |c| {
                sql::streams(
                    c,
                    g.id,
                    prefix.as_deref(),
                    order,
                    descending,
                    offset,
                    limit + 1,
                )
            })
            .await?;
        let next = (found.len() > limit).then(|| format!("s/{}", offset + limit));
        found.truncate(limit);
        Ok(DescribeLogStreamsResponse {
            log_streams: Some(
                found
                    .into_iter()
                    .map(|s| LogStream {
                        arn: Some(self.stream_arn(&group, &s.name)),
                        log_stream_name: Some(s.name),
                        creation_time: Some(s.created),
                        first_event_timestamp: s.first_event,
                        last_event_timestamp: s.last_event,
                        last_ingestion_time: s.last_ingestion,
                        stored_bytes: Some(s.stored_bytes),
                        upload_sequence_token: None,
                    })
                    .collect(),
            ),
            next_token: next,
        })
    }

    pub async fn put_retention(
        &self,
        req: PutRetentionPolicyRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        gate.authorize(
            "logs:PutRetentionPolicy",
            &[self.group_arn(&req.log_group_name)],
        )?;
        if !RETENTION_DAYS.contains(&req.retention_in_days) {
            return Err(invalid(format!(
                "1 validation error detected: Value '{}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}",
                req.retention_in_days
            )));
        }
        let g = self.existing_group(&req.log_group_name).await?;
        let days = req.retention_in_days;
        self.db(move |c| sql::set_retention(c, g.id, Some(days)))
            .await?;
        Ok(serde_json::json!({}))
    }

    pub async fn delete_retention(
        &self,
        req: DeleteRetentionPolicyRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        gate.authorize(
            "logs:DeleteRetentionPolicy",
            &[self.group_arn(&req.log_group_name)],
        )?;
        let g = self.existing_group(&req.log_group_name).await?;
        self.db(move |c| sql::set_retention(c, g.id, None)).await?;
        Ok(serde_json::json!({}))
    }

    /// The group a tagging ARN names (`...:log-group:<name>`, with or without `:*`).
    async fn tagged_group(&self, arn: &str) -> Result<Group, ServiceError> {
        let name = arn
            .strip_prefix(&format!(
                "arn:aws:logs:{}:{}:log-group:",
                self.region, self.account
            ))
            .map(|n| n.trim_end_matches(":*"))
            .ok_or_else(|| {
                invalid(format!(
                    "Invalid resource ARN {arn:?}: gantry tags log groups only."
                ))
            })?;
        self.existing_group(name).await
    }

    pub async fn tag(
        &self,
        req: TagResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        check_tags(&req.tags)?;
        let ask = gantry_core::Ask::on(vec![req.resource_arn.clone()])
            .request_tags(req.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        gate.authorize_ask("logs:TagResource", &ask, &gantry_core::NoTags)?;
        let g = self.tagged_group(&req.resource_arn).await?;
        let mut tags = g.tags.clone();
        tags.extend(req.tags);
        check_tags(&tags)?;
        self.db(move |c| sql::set_tags(c, g.id, &tags)).await?;
        Ok(serde_json::json!({}))
    }

    pub async fn untag(
        &self,
        req: UntagResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<serde_json::Value, ServiceError> {
        gate.authorize(
            "logs:UntagResource",
            std::slice::from_ref(&req.resource_arn),
        )?;
        let g = self.tagged_group(&req.resource_arn).await?;
        let mut tags = g.tags.clone();
        for k in &req.tag_keys {
            tags.remove(k);
        }
        self.db(move |c| sql::set_tags(c, g.id, &tags)).await?;
        Ok(serde_json::json!({}))
    }

    pub async fn list_tags(
        &self,
        req: ListTagsForResourceRequest,
        gate: &Gate<'_>,
    ) -> Result<ListTagsForResourceResponse, ServiceError> {
        gate.authorize(
            "logs:ListTagsForResource",
            std::slice::from_ref(&req.resource_arn),
        )?;
        let g = self.tagged_group(&req.resource_arn).await?;
        Ok(ListTagsForResourceResponse { tags: Some(g.tags) })
    }
}
