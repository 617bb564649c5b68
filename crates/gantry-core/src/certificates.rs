//! Where load balancers get the certificates of their HTTPS listeners: ACM's imported
//! certificates, which the ELB data plane sees only through [`CertificateStore`], so that the
//! ELB crate does not depend on the crate that keeps them.

/// A certificate with its chain and private key, as PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The certificate, then its chain.
    pub chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// The DNS names the certificate is for (its common name first), for SNI.
    pub names: Vec<String>,
    /// Changes when the certificate is re-imported.
    pub revision: u64,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches logs.
        f.write_str("KeyPair(..)")
    }
}

/// The region's certificates.
pub trait CertificateStore: Send + Sync + std::fmt::Debug + 'static {
    /// Whether `arn` names a certificate (CreateListener refuses others).
    fn exists(&self, arn: &str) -> bool;
    /// The certificate, chain and key `arn` names, opened.
    fn key_pair(&self, arn: &str) -> Option<KeyPair>;
    /// The certificate's revision, cheaply (listeners reload a re-imported one by it).
    fn revision(&self, arn: &str) -> Option<u64>;
}
