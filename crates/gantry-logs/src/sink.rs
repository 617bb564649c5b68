//! The `awslogs` output of task containers, shipped by their agents: stored exactly once,
//! authorized as the task's execution role (gantry-core's [`LogSink`]).

use crate::events::{EVENT_OVERHEAD, MAX_EVENT_BYTES};
use crate::groups::{check_group_name, check_stream_name};
use crate::store::{sql, Group};
use crate::{not_found, now_ms, Logs};
use gantry_api::agent::ShipRequest;
use gantry_core::table::BoxFuture;
use gantry_core::{Gate, LogSink, ServiceError};

impl LogSink for Logs {
    fn ship<'a>(
        &'a self,
        batch: ShipRequest,
        gate: &'a Gate<'a>,
    ) -> BoxFuture<'a, Result<u64, ServiceError>> {
        Box::pin(async move {
            check_group_name(&batch.group)?;
            check_stream_name(&batch.stream)?;
            let stream_arn = self.stream_arn(&batch.group, &batch.stream);
            let name = batch.group.clone();
            let mut group = self.db(move |c| sql::group(c, &name)).await?;
            if group.is_none() && batch.create_group {
                gate.authorize("logs:CreateLogGroup", &[self.group_arn(&batch.group)])?;
                let g = Group {
                    id: 0,
                    name: batch.group.clone(),
                    created: now_ms(),
                    retention_days: None,
                    kms_key_id: None,
                    class: None,
                    tags: Default::default(),
                    stored_bytes: 0,
                };
                group = self
                    .db(move |c| {
                        sql::create_group(c, &g)?;
                        sql::group(c, &g.name)
                    })
                    .await?;
            }
            let Some(group) = group else {
                return Err(not_found("The specified log group does not exist."));
            };
            let (gid, sname) = (group.id, batch.stream.clone());
            let exists = self
                .db(move |c| sql::stream(c, gid, &sname))
                .await?
                .is_some();
            if !exists {
                gate.authorize("logs:CreateLogStream", std::slice::from_ref(&stream_arn))?;
            }
            gate.authorize("logs:PutLogEvents", &[stream_arn])?;
            // Lines CloudWatch would refuse are dropped, not retried for ever: the range is
            // shipped either way.
            let now = now_ms();
            let kept_from = group
                .retention_days
                .map_or(i64::MIN, |d| now - i64::from(d) * 86_400_000);
            let events: Vec<(i64, String)> = batch
                .events
                .into_iter()
                .filter(|(ts, _)| *ts >= kept_from)
                .map(|(ts, mut m)| {
                    if m.len() + EVENT_OVERHEAD > MAX_EVENT_BYTES {
                        let mut cut = MAX_EVENT_BYTES - EVENT_OVERHEAD;
                        while !m.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        m.truncate(cut);
                    }
                    (ts, m)
                })
                .collect();
            let (stream, source, from, to) = (batch.stream, batch.source, batch.from, batch.to);
            self.db(move |c| sql::ship(c, gid, &stream, &source, from, to, &events, now))
                .await
        })
    }
}
