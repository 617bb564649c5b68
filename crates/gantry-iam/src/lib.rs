//! gantry-iam: the account's identities, served as AWS's global IAM and STS services, and the
//! authorizer every call of every service passes.
//!
//! - [`model`]: the records (users, access keys, groups, roles, managed policies, sessions).
//! - [`directory`]: the records in memory and the [`directory::View`] each request reads, with
//!   every principal's policies compiled (rebuilt once per change).
//! - [`access`]: gantry-core's [`gantry_core::Authorizer`] and gantry-auth's
//!   [`gantry_auth::Keys`] over the view: AWS's evaluation rules through `gantry-policy`.
//! - [`api`]: IAM's operations (Query, version 2010-05-08, XML answers).
//! - [`sts`]: STS's operations: GetCallerIdentity, AssumeRole, GetSessionToken.
//! - [`task_roles`]: sessions of the roles ECS tasks run as, issued, renewed and ended.
//! - [`managed`]: the built-in AWS-managed policies.

pub mod access;
pub mod api;
pub mod directory;
pub mod managed;
pub mod model;
pub mod sts;
pub mod task_roles;
#[cfg(test)]
mod tests;

use directory::{Compiled, Directory, Draft, Inputs, View};
use gantry_core::{RecordError, Scoped, ServiceError};
use gantry_store::{Store, TxnOutcome};
use std::sync::{Arc, Mutex, RwLock};

/// Timings and limits of the identity service.
#[derive(Debug, Clone)]
pub struct IamSettings {
    /// The shortest session AssumeRole and GetSessionToken grant, in seconds (AWS: 900).
    pub min_session_secs: i64,
    /// How long an expired session is kept, so that its requests are told "expired" rather
    /// than "invalid", in seconds.
    pub expired_session_retention_secs: i64,
    /// How long a task role's session lasts, in seconds; it is renewed at half its life.
    pub task_session_secs: i64,
}

impl Default for IamSettings {
    fn default() -> Self {
        IamSettings {
            min_session_secs: 900,
            expired_session_retention_secs: 24 * 3600,
            task_session_secs: 6 * 3600,
        }
    }
}

/// The identity service: its records, the compiled view of them, and its settings.
pub struct Iam {
    account: String,
    store: Scoped,
    configured: gantry_auth::KeySet,
    aws: Vec<managed::AwsPolicy>,
    settings: IamSettings,
    /// Serialises writers; readers never wait for it.
    writer: tokio::sync::Mutex<()>,
    compiled: Mutex<Compiled>,
    view: RwLock<Arc<View>>,
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The entry of one of this crate's global Query services (IAM, STS): signed with `name`,
/// refusing authorizations as `AccessDenied` (403).
pub(crate) fn query_entry(
    name: &'static str,
    version: &'static str,
    xml_namespace: &'static str,
    dispatcher: Arc<dyn gantry_core::Dispatch>,
) -> gantry_core::ServiceEntry {
    gantry_core::ServiceEntry {
        name,
        signing_name: name,
        recognise: vec![gantry_core::Recognise::Query { version }],
        xml_namespace,
        denial: gantry_core::authz::DenialShape {
            code: "AccessDenied",
            status: 403,
        },
        regions: gantry_core::Regions::Global,
        dispatcher,
    }
}

/// A store failure, as IAM reports a fault of its own.
pub(crate) fn service_failure(e: impl std::fmt::Display) -> ServiceError {
    tracing::error!(error = %e, "the identity store failed");
    ServiceError::new(
        "ServiceFailure",
        500,
        "The request processing has failed because of an unknown error, exception or failure.",
    )
}

impl Iam {
    /// Loads the account's identities from `store` (namespace `iam/global/`). `configured`
    /// holds the keys of the config file and the admin key, which sign as their owners.
    pub async fn open(
        store: Arc<dyn Store>,
        account: impl Into<String>,
        configured: gantry_auth::KeySet,
        settings: IamSettings,
    ) -> Result<Arc<Iam>, RecordError> {
        let store = Scoped::global(store, "iam");
        let mut dir = Directory::default();
        for (id, v, _) in model::USERS.load(&store).await? {
            dir.users.insert(id, v);
        }
        for (id, v, _) in model::ACCESS_KEYS.load(&store).await? {
            dir.keys.insert(id, v);
        }
        for (id, v, _) in model::GROUPS.load(&store).await? {
            dir.groups.insert(id, v);
        }
        for (id, v, _) in model::ROLES.load(&store).await? {
            dir.roles.insert(id, v);
        }
        for (id, v, _) in model::POLICIES.load(&store).await? {
            dir.policies.insert(id, v);
        }
        for (id, v, _) in model::SESSIONS.load(&store).await? {
            dir.sessions.insert(id, v);
        }
        for (id, s) in configured.iter() {
            if let Some(name) = s.user.strip_prefix("user/") {
                if !dir.users.contains_key(&model::id_of(name)) {
                    tracing::warn!(access_key_id = %id, user = name, "a configured key names an IAM user that does not exist: its requests are denied until the user is created");
                }
            }
        }
        let iam = Iam {
            account: account.into(),
            store,
            configured,
            aws: managed::all(),
            settings,
            writer: tokio::sync::Mutex::new(()),
            compiled: Mutex::new(Compiled::default()),
            view: RwLock::new(Arc::new(View::default())),
        };
        iam.publish(dir);
        Ok(Arc::new(iam))
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn settings(&self) -> &IamSettings {
        &self.settings
    }

    /// The built-in AWS-managed policies.
    pub fn aws_policies(&self) -> &[managed::AwsPolicy] {
        &self.aws
    }

    /// The view every request reads now.
    pub fn view(&self) -> Arc<View> {
        match self.view.read() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn inputs(&self) -> Inputs<'_> {
        Inputs {
            account: &self.account,
            configured: &self.configured,
            aws: &self.aws,
        }
    }

    /// A group's own grants, compiled through the shared cache.
    pub(crate) fn group_grants(&self, dir: &Directory, group: &model::Group) -> directory::Grants {
        let mut compiled = match self.compiled.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        directory::group_grants(&self.inputs(), dir, &mut compiled, group)
    }

    fn publish(&self, dir: Directory) {
        let view = {
            let mut compiled = match self.compiled.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            Arc::new(directory::build(dir, &self.inputs(), &mut compiled))
        };
        match self.view.write() {
            Ok(mut v) => *v = view,
            Err(p) => *p.into_inner() = view,
        }
    }

    /// Makes a change: `f` edits a draft of the directory; its writes are committed to the
    /// store in one transaction and, once durable, the new view is published. Nothing changes
    /// when `f` fails or the store does.
    pub(crate) async fn write<T>(
        &self,
        f: impl FnOnce(&mut Draft) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _guard = self.writer.lock().await;
        let mut draft = Draft::new(self.view().dir.clone(), unix_now());
        let out = f(&mut draft)?;
        let (dir, txn) = draft.into_parts();
        if !txn.ops.is_empty() {
            match self.store.commit(txn).await {
                Ok(TxnOutcome::Committed(_)) => {}
                Ok(TxnOutcome::Conflict) => {
                    return Err(service_failure("a conflicting write to the identity store"))
                }
                Err(e) => return Err(service_failure(e)),
            }
        }
        self.publish(dir);
        Ok(out)
    }
}
