//! TLS for HTTPS listeners: each handshake gets the listener's certificate whose names match
//! the client's SNI (its first, the default, otherwise), from the certificate store. The
//! listener's certificates are read from the records at each handshake, so certificates added
//! or removed apply without reopening its socket, and a re-imported certificate is loaded
//! again at the next handshake (by its revision).

use crate::model::Resource;
use crate::Elb;
use gantry_core::CertificateStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A loaded certificate: its revision, names and key.
struct Loaded {
    revision: u64,
    names: Vec<String>,
    key: Arc<CertifiedKey>,
}

/// The certificates of one listener, loaded as handshakes need them.
pub(crate) struct Certificates {
    elb: Arc<Elb>,
    store: Arc<dyn CertificateStore>,
    listener: String,
    loaded: Mutex<HashMap<String, Loaded>>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Certificates({})", self.listener)
    }
}

/// Whether a certificate name (`web.example.com`, `*.example.com`) covers a host.
pub(crate) fn covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == host,
    }
}

fn load(store: &dyn CertificateStore, arn: &str) -> Result<Loaded, String> {
    let pair = store
        .key_pair(arn)
        .ok_or_else(|| format!("the certificate {arn} is gone"))?;
    let chain = CertificateDer::pem_slice_iter(&pair.chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate {arn} is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&pair.key_pem)
        .map_err(|e| format!("the key of {arn} is not PEM: {e}"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("the key of {arn} cannot sign: {e}"))?;
    Ok(Loaded {
        revision: pair.revision,
        names: pair.names,
        key: Arc::new(CertifiedKey::new(chain, signing)),
    })
}

/// The listener's certificate ARNs now, its default first.
fn arns_of(elb: &Elb, listener: &str) -> Vec<String> {
    match elb.snapshot().get(listener) {
        Some(Resource::Listener(l)) => l
            .tls
            .as_ref()
            .map(|t| t.certificates.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

impl Certificates {
    /// The listener's certificates; its default one must load now.
    pub(crate) fn new(elb: Arc<Elb>, listener: &str) -> Result<Self, String> {
        let store = elb
            .settings()
            .certificates
            .clone()
            .ok_or("this server keeps no certificates")?;
        let arns = arns_of(&elb, listener);
        let first = arns.first().ok_or("the listener has no certificate")?;
        let loaded = load(store.as_ref(), first)?;
        Ok(Certificates {
            loaded: Mutex::new(HashMap::from([(first.clone(), loaded)])),
            store,
            elb,
            listener: listener.to_string(),
        })
    }

    /// The key for a handshake asking for `host`: the first certificate whose names cover it,
    /// else the default; each loaded again when its revision moved.
    fn key_for(&self, host: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let arns = arns_of(&self.elb, &self.listener);
        let mut loaded = match self.loaded.lock() {
            Ok(l) => l,
            Err(p) => p.into_inner(),
        };
        loaded.retain(|arn, _| arns.contains(arn));
        let mut default = None;
        for arn in &arns {
            let Some(rev) = self.store.revision(arn) else {
                continue;
            };
            if loaded.get(arn).is_none_or(|l| l.revision != rev) {
                match load(self.store.as_ref(), arn) {
                    Ok(l) => {
                        loaded.insert(arn.clone(), l);
                    }
                    Err(e) => {
                        tracing::warn!(certificate = %arn, error = %e, "a listener's certificate cannot be loaded")
                    }
                }
            }
            let Some(l) = loaded.get(arn) else { continue };
            if host.is_some_and(|h| l.names.iter().any(|n| covers(n, h))) {
                return Some(l.key.clone());
            }
            default.get_or_insert_with(|| l.key.clone());
        }
        default
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key_for(hello.server_name())
    }
}

/// The TLS side of an HTTPS listener: ALPN offers HTTP/2, then HTTP/1.1.
pub(crate) fn acceptor(elb: Arc<Elb>, listener: &str) -> Result<tokio_rustls::TlsAcceptor, String> {
    let certificates = Certificates::new(elb, listener)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(certificates));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::covers;

    #[test]
    fn names_and_wildcards_cover_hosts_as_tls_says() {
        assert!(covers("web.example.com", "WEB.example.com"));
        assert!(covers("*.example.com", "api.example.com"));
        assert!(!covers("*.example.com", "example.com"));
        assert!(!covers("*.example.com", "a.b.example.com"));
        assert!(!covers("web.example.com", "api.example.com"));
    }
}
