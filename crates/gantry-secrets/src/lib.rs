//! gantry-secrets: AWS Secrets Manager and SSM Parameter Store, the two places ECS tasks'
//! `secrets` come from, each through its own protocol (AWS JSON 1.1: `secretsmanager.<Op>` and
//! `AmazonSSM.<Op>`), every operation authorized at the IAM hook.
//!
//! - [`seal`]: values are sealed at rest (XChaCha20-Poly1305, the installation's key in the
//!   data directory); they never reach logs.
//! - [`secretsmanager`]: secrets with versions and staging labels, deletion with a recovery
//!   window, tags.
//! - [`ssm`]: parameters (String, StringList, SecureString) with versions, labels and paths.
//! - [`acm`]: Certificate Manager's imported certificates, their keys sealed: what HTTPS
//!   listeners of load balancers serve.

pub mod acm;
pub mod seal;
pub mod secretsmanager;
pub mod ssm;

use gantry_core::json::{body, decode, encode};
use gantry_core::{Records, Scoped, ServiceError};
use gantry_store::Store;
use seal::Sealer;
use std::sync::Arc;

/// Both services: their records, the sealer, and where they are.
pub struct Secrets {
    region: String,
    account: String,
    sealer: Sealer,
    secrets: Records<secretsmanager::SecretRecord>,
    parameters: Records<ssm::ParameterRecord>,
    certificates: Records<acm::CertificateRecord>,
}

impl Secrets {
    /// Loads both services' records (namespaces `secretsmanager/<region>/` and
    /// `ssm/<region>/`), sealing with `sealer`.
    pub async fn open(
        store: Arc<dyn Store>,
        region: impl Into<String>,
        account: impl Into<String>,
        sealer: Sealer,
    ) -> Result<Arc<Secrets>, gantry_core::RecordError> {
        let region = region.into();
        let sm: Arc<dyn Store> =
            Arc::new(Scoped::regional(store.clone(), "secretsmanager", &region));
        let ps: Arc<dyn Store> = Arc::new(Scoped::regional(store.clone(), "ssm", &region));
        let cs: Arc<dyn Store> = Arc::new(Scoped::regional(store, "acm", &region));
        Ok(Arc::new(Secrets {
            secrets: Records::load(secretsmanager::SECRETS, sm, secretsmanager::internal).await?,
            parameters: Records::load(ssm::PARAMETERS, ps, ssm::internal).await?,
            certificates: Records::load(acm::CERTIFICATES, cs, acm::internal).await?,
            region,
            account: account.into(),
            sealer,
        }))
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account(&self) -> &str {
        &self.account
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({})", self.region)
    }
}

/// Seconds since the epoch, with milliseconds, as the JSON protocols write timestamps.
fn now() -> f64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as f64 / 1000.0
}

/// The ARN `ssm:GetParameters` is authorized on for a parameter reference (name or ARN, with
/// or without a `:version` / `:label` selector).
fn parameter_arn(region: &str, account: &str, reference: &str) -> String {
    if reference.starts_with("arn:") {
        return reference.split(':').take(6).collect::<Vec<_>>().join(":");
    }
    let name = reference.split(':').next().unwrap_or(reference);
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.strip_prefix('/').unwrap_or(name)
    )
}

impl gantry_core::SecretSource for Secrets {
    fn value(
        &self,
        value_from: &str,
        gate: &gantry_core::Gate<'_>,
    ) -> Result<String, ServiceError> {
        if value_from.starts_with("arn:aws:secretsmanager:") {
            return self.secret_value(value_from, gate);
        }
        gate.authorize(
            "ssm:GetParameters",
            &[parameter_arn(&self.region, &self.account, value_from)],
        )?;
        self.parameter_value(value_from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameter_references_name_their_arn() {
        let arn = |r| super::parameter_arn("us-east-1", "1", r);
        assert_eq!(arn("/app/db"), "arn:aws:ssm:us-east-1:1:parameter/app/db");
        assert_eq!(arn("db:live"), "arn:aws:ssm:us-east-1:1:parameter/db");
        assert_eq!(
            arn("arn:aws:ssm:us-east-1:1:parameter/app/db:3"),
            "arn:aws:ssm:us-east-1:1:parameter/app/db"
        );
    }
}
