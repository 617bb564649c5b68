//! The HTTPS certificate: the one the settings name, or one generated into the data directory
//! on first start (`<data-dir>/tls/ca.pem`, `cert.pem`, `key.pem`) with a CA of its own whose
//! key is thrown away once it has signed.

use crate::config::{Settings, Tls};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The CA clients trust when gantry generated its certificate.
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("ca.pem")
}

/// The names the generated certificate is good for: loopback, this host's name, the listen
/// address when it is a specific one, and `extra`.
fn names(settings: &Settings, extra: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    let ip = settings.listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names.extend(extra.iter().cloned());
    names.sort();
    names.dedup();
    names
}

fn generate(dir: &Path, names: Vec<String>) -> anyhow::Result<()> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "gantry installation CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut leaf = CertificateParams::new(names).context("the certificate's names")?;
    leaf.distinguished_name.push(DnType::CommonName, "gantry");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::config::write_private(&dir.join("key.pem"), key.serialize_pem().as_bytes())?;
    std::fs::write(dir.join("cert.pem"), cert.pem())?;
    // Written last: its presence says the directory is complete.
    std::fs::write(dir.join("ca.pem"), ca_cert.pem())?;
    Ok(())
}

/// The server's TLS configuration, when it serves HTTPS; generates the certificate on first
/// start when the settings ask for a generated one.
pub fn server_config(settings: &Settings) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (cert, key) = match &settings.tls {
        None => return Ok(None),
        Some(Tls::Files { cert, key }) => (cert.clone(), key.clone()),
        Some(Tls::Generated) => {
            let dir = settings.data_dir.join("tls");
            if !ca_path(&settings.data_dir).exists() {
                let names = names(settings, &[]);
                tracing::info!(dir = %dir.display(), ?names, "generating the HTTPS certificate");
                generate(&dir, names)?;
            }
            (dir.join("cert.pem"), dir.join("key.pem"))
        }
    };
    let cert_pem = std::fs::read(&cert)
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let key_pem =
        std::fs::read(&key).with_context(|| format!("reading the key {}", key.display()))?;
    let cfg = gantry_server::tls::server_config(&cert_pem, &key_pem)
        .with_context(|| format!("loading {} and {}", cert.display(), key.display()))?;
    Ok(Some(cfg))
}
