//! gantry-logs: CloudWatch Logs (`Logs_20140328.<Op>`, AWS JSON 1.1, signed for `logs`, the
//! server's region): log groups, streams and events in a log store of their own
//! ([`store`]), filter patterns from `gantry-logs-pattern`, retention enforced.
//!
//! - [`groups`]: log groups and streams, retention, tags.
//! - [`events`]: PutLogEvents, GetLogEvents, FilterLogEvents.
//!
//! Every operation is authorized as `logs:<Operation>` on the ARNs AWS's Service
//! Authorization Reference gives it: `arn:aws:logs:<region>:<account>:log-group:<name>` (and
//! `...:log-stream:<stream>` for stream operations).

pub mod chunks;
pub mod events;
pub mod groups;
pub mod sink;
pub mod store;

use gantry_api::logs::{Operation, SIGNING_NAME, TARGET_PREFIX};
use gantry_core::json::{body, decode, encode};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, ServiceEntry, ServiceError};
use std::sync::Arc;
use std::time::Duration;
use store::{LogStore, StoreFailure};

/// Limits and timings of the service (CloudWatch's by default).
#[derive(Debug, Clone)]
pub struct LogsSettings {
    /// How often events older than their group's retention are deleted.
    pub expiry_interval: Duration,
}

impl Default for LogsSettings {
    fn default() -> Self {
        LogsSettings {
            expiry_interval: Duration::from_secs(60),
        }
    }
}

/// The service: its store, region and account.
pub struct Logs {
    store: LogStore,
    region: String,
    account: String,
    settings: LogsSettings,
}

/// Milliseconds since the epoch, CloudWatch Logs' times.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub(crate) fn invalid(m: impl Into<String>) -> ServiceError {
    ServiceError::new("InvalidParameterException", 400, m)
}

pub(crate) fn not_found(m: impl Into<String>) -> ServiceError {
    ServiceError::new("ResourceNotFoundException", 400, m)
}

pub(crate) fn already_exists(what: &str) -> ServiceError {
    ServiceError::new(
        "ResourceAlreadyExistsException",
        400,
        format!("The specified {what} already exists"),
    )
}

pub(crate) fn failure(e: StoreFailure) -> ServiceError {
    tracing::error!(error = %e, "the log store failed");
    ServiceError::new(
        "ServiceUnavailableException",
        500,
        "The service cannot complete the request.",
    )
}

impl Logs {
    pub fn new(
        store: LogStore,
        region: impl Into<String>,
        account: impl Into<String>,
        settings: LogsSettings,
    ) -> Arc<Logs> {
        Arc::new(Logs {
            store,
            region: region.into(),
            account: account.into(),
            settings,
        })
    }

    pub fn store(&self) -> &LogStore {
        &self.store
    }

    /// Runs `f` on the log store; its failure is the service's own.
    pub(crate) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> store::Result<T> + Send + 'static,
    ) -> Result<T, ServiceError> {
        self.store.run(f).await.map_err(failure)
    }

    /// `arn:aws:logs:<region>:<account>:log-group:<name>`
    pub fn group_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}",
            self.region, self.account
        )
    }

    /// `...:log-group:<group>:log-stream:<stream>`
    pub fn stream_arn(&self, group: &str, stream: &str) -> String {
        format!("{}:log-stream:{stream}", self.group_arn(group))
    }

    /// Deletes expired events every `expiry_interval`, forever.
    pub async fn run_expiry(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.settings.expiry_interval);
        loop {
            tick.tick().await;
            let now = now_ms();
            match self.store.run(move |c| store::sql::expire(c, now)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    events = n,
                    "deleted log events past their group's retention"
                ),
                Err(e) => tracing::warn!(error = %e, "expiring log events failed"),
            }
        }
    }
}

struct Service(Arc<Logs>);

/// CloudWatch Logs' entry in the service table.
pub fn entry(logs: &Arc<Logs>) -> ServiceEntry {
    ServiceEntry::json_1_1(
        SIGNING_NAME,
        TARGET_PREFIX,
        &logs.region,
        Arc::new(Service(logs.clone())),
    )
}

const INVALID: &str = "InvalidParameterException";

impl Dispatch for Service {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let b = body(&call)?;
            let l = &self.0;
            let g = &call.gate;
            match call.operation {
                "CreateLogGroup" => encode(&l.create_group(decode(b, INVALID)?, g).await?),
                "DeleteLogGroup" => encode(&l.delete_group(decode(b, INVALID)?, g).await?),
                "DescribeLogGroups" => encode(&l.describe_groups(decode(b, INVALID)?, g).await?),
                "CreateLogStream" => encode(&l.create_stream(decode(b, INVALID)?, g).await?),
                "DeleteLogStream" => encode(&l.delete_stream(decode(b, INVALID)?, g).await?),
                "DescribeLogStreams" => encode(&l.describe_streams(decode(b, INVALID)?, g).await?),
                "PutRetentionPolicy" => encode(&l.put_retention(decode(b, INVALID)?, g).await?),
                "DeleteRetentionPolicy" => {
                    encode(&l.delete_retention(decode(b, INVALID)?, g).await?)
                }
                "TagResource" => encode(&l.tag(decode(b, INVALID)?, g).await?),
                "UntagResource" => encode(&l.untag(decode(b, INVALID)?, g).await?),
                "ListTagsForResource" => encode(&l.list_tags(decode(b, INVALID)?, g).await?),
                "PutLogEvents" => encode(&l.put_events(decode(b, INVALID)?, g).await?),
                "GetLogEvents" => encode(&l.get_events(decode(b, INVALID)?, g).await?),
                "FilterLogEvents" => encode(&l.filter_events(decode(b, INVALID)?, g).await?),
                op if Operation::from_name(op).is_some() => Err(ServiceError::not_served(
                    "InvalidOperationException",
                    "CloudWatch Logs",
                    op,
                )),
                op => Err(ServiceError::unknown_operation(TARGET_PREFIX, op)),
            }
        })
    }
}
