//! AWS Certificate Manager, the subset load balancers need (`CertificateManager.<Op>`, AWS
//! JSON 1.1, signed for `acm`): ImportCertificate (and re-import to the same ARN),
//! DescribeCertificate, ListCertificates, GetCertificate, DeleteCertificate, and the tags of
//! certificates. Each is authorized as `acm:<Operation>` on the certificate's ARN.
//!
//! The private key is sealed at rest as secrets are (context `acm:<arn>`); the certificate and
//! its chain are kept as given. What DescribeCertificate says (names, validity, serial, key
//! algorithm) is read from the certificate with x509-parser; ImportCertificate refuses a key
//! that does not match its certificate (rustls checks it), as ACM does.

use crate::{now, Secrets};
use base64::Engine;
use gantry_api::acm::{
    AddTagsToCertificateRequest, DeleteCertificateRequest, DescribeCertificateRequest,
    GetCertificateRequest, ImportCertificateRequest, ListCertificatesRequest,
    ListTagsForCertificateRequest, RemoveTagsFromCertificateRequest, Tag, TARGET_PREFIX,
};
use gantry_core::json::{body, decode, encode};
use gantry_core::table::BoxFuture;
use gantry_core::{Call, Dispatch, Gate, KeyPair, Kind, ServiceEntry, ServiceError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// An imported certificate, as the store holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    pub arn: String,
    pub certificate_pem: String,
    #[serde(default)]
    pub chain_pem: String,
    /// The private key's PEM, sealed for `acm:<arn>`.
    pub sealed_key: String,
    pub facts: Facts,
    pub imported_at: f64,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
}

/// What the certificate says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub domain: String,
    pub names: Vec<String>,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: f64,
    pub not_after: f64,
    pub key_algorithm: String,
    pub signature_algorithm: String,
}

pub const CERTIFICATES: Kind<CertificateRecord> = Kind::new("certificates");

const INVALID: &str = "InvalidParameterException";

fn validation(m: impl Into<String>) -> ServiceError {
    ServiceError::new("ValidationException", 400, m)
}

fn not_found(arn: &str) -> ServiceError {
    ServiceError::new(
        "ResourceNotFoundException",
        400,
        format!("Could not find certificate {arn}."),
    )
}

pub(crate) fn internal(e: String) -> ServiceError {
    tracing::error!(error = %e, "the certificate store failed");
    ServiceError::new("InternalFailure", 500, "An internal error occurred.")
}

/// A blob member: base64 of PEM text.
fn pem_of(what: &str, blob: &str) -> Result<Vec<u8>, ServiceError> {
    base64::engine::general_purpose::STANDARD
        .decode(blob.trim())
        .map_err(|_| {
            validation(format!(
                "The {what} is not base64 (the CLI's fileb:// gives it so)."
            ))
        })
}

/// Reads a certificate's facts; `Err` says why it is not one ACM imports.
pub fn facts(cert_pem: &[u8]) -> Result<Facts, String> {
    use x509_parser::prelude::*;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem)
        .map_err(|_| "The certificate is not a PEM-encoded X.509 certificate.".to_string())?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("The certificate could not be parsed: {e}"))?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .map(str::to_string);
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let domain = cn
        .clone()
        .or_else(|| names.first().cloned())
        .ok_or("The certificate names no domain (no common name, no DNS names).")?;
    if !names.contains(&domain) {
        names.insert(0, domain.clone());
    }
    let key_algorithm = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(k)) => format!("RSA_{}", k.key_size()),
        Ok(x509_parser::public_key::PublicKey::EC(k)) => match k.key_size() {
            256 => "EC_prime256v1".into(),
            384 => "EC_secp384r1".into(),
            521 => "EC_secp521r1".into(),
            n => format!("EC_{n}"),
        },
        _ => return Err("The certificate's key is neither RSA nor EC.".into()),
    };
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    let signature_algorithm = match oid.as_str() {
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA",
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA",
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA",
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA",
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA",
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA",
        other => other,
    }
    .to_string();
    Ok(Facts {
        domain,
        names,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: cert.raw_serial_as_string(),
        not_before: cert.validity().not_before.timestamp() as f64,
        not_after: cert.validity().not_after.timestamp() as f64,
        key_algorithm,
        signature_algorithm,
    })
}

/// Whether the key is the certificate's (rustls reads both and compares the public keys).
fn check_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| "The certificate is not PEM.".to_string())?;
    if certs.len() != 1 {
        return Err("The certificate field must hold exactly one certificate; put the chain in CertificateChain.".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
        "The private key is not a PEM private key (PKCS#8, PKCS#1 or SEC1).".to_string()
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("The private key is not usable: {e}"))?;
    rustls::sign::CertifiedKey::new(certs, signing)
        .keys_match()
        .map_err(|_| "The private key does not match the certificate.".to_string())
}

fn detail(r: &CertificateRecord) -> Value {
    let f = &r.facts;
    let status = if f.not_after < now() {
        "EXPIRED"
    } else {
        "ISSUED"
    };
    json!({
        "CertificateArn": r.arn,
        "DomainName": f.domain,
        "SubjectAlternativeNames": f.names,
        "Serial": f.serial,
        "Subject": f.subject,
        "Issuer": f.issuer,
        "ImportedAt": r.imported_at,
        "Status": status,
        "NotBefore": f.not_before,
        "NotAfter": f.not_after,
        "KeyAlgorithm": f.key_algorithm,
        "SignatureAlgorithm": f.signature_algorithm,
        "InUseBy": [],
        "Type": "IMPORTED",
        "RenewalEligibility": "INELIGIBLE",
    })
}

fn summary(r: &CertificateRecord) -> Value {
    let d = detail(r);
    json!({
        "CertificateArn": d["CertificateArn"],
        "DomainName": d["DomainName"],
        "SubjectAlternativeNameSummaries": d["SubjectAlternativeNames"],
        "HasAdditionalSubjectAlternativeNames": false,
        "Status": d["Status"],
        "Type": "IMPORTED",
        "KeyAlgorithm": d["KeyAlgorithm"],
        "NotBefore": d["NotBefore"],
        "NotAfter": d["NotAfter"],
        "ImportedAt": d["ImportedAt"],
        "InUse": false,
        "RenewalEligibility": "INELIGIBLE",
    })
}

fn check_tags(tags: &[Tag]) -> Result<(), ServiceError> {
    if tags.len() > 50 {
        return Err(ServiceError::new(
            "TooManyTagsException",
            400,
            "A certificate can have at most 50 tags.",
        ));
    }
    if tags.iter().any(|t| t.key.is_empty() || t.key.len() > 128) {
        return Err(ServiceError::new(
            "InvalidTagException",
            400,
            "Tag keys have 1 to 128 characters.",
        ));
    }
    Ok(())
}

impl Secrets {
    pub(crate) fn certificate_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:acm:{}:{}:certificate/{id}",
            self.region, self.account
        )
    }

    fn seal_context(arn: &str) -> String {
        format!("acm:{arn}")
    }

    async fn import_certificate(
        &self,
        r: ImportCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        let arn = match &r.certificate_arn {
            Some(a) => a.clone(),
            None => self.certificate_arn(&uuid::Uuid::new_v4().to_string()),
        };
        gate.authorize("acm:ImportCertificate", std::slice::from_ref(&arn))?;
        let cert = pem_of("Certificate", &r.certificate)?;
        let key = pem_of("PrivateKey", &r.private_key)?;
        let chain = r
            .certificate_chain
            .as_deref()
            .map(|c| pem_of("CertificateChain", c))
            .transpose()?
            .unwrap_or_default();
        let facts = facts(&cert).map_err(validation)?;
        check_key(&cert, &key).map_err(validation)?;
        if !chain.is_empty() {
            CertificateDer::pem_slice_iter(&chain)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| validation("The certificate chain is not PEM certificates."))?;
        }
        let tags = r.tags.clone().unwrap_or_default();
        check_tags(&tags)?;
        if r.certificate_arn.is_some() && !tags.is_empty() {
            return Err(validation(
                "Tags cannot be given when a certificate is re-imported.",
            ));
        }
        let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| validation("PEM is text."));
        let record = CertificateRecord {
            arn: arn.clone(),
            certificate_pem: text(cert)?,
            chain_pem: text(chain)?,
            sealed_key: self.sealer.seal(&Self::seal_context(&arn), &key),
            facts,
            imported_at: now(),
            tags: tags
                .into_iter()
                .map(|t| (t.key, t.value.unwrap_or_default()))
                .collect(),
        };
        let reimport = r.certificate_arn.is_some();
        self.certificates
            .update(|rows| {
                match (rows.get(&arn), reimport) {
                    (None, true) => return Err(not_found(&arn)),
                    (Some(old), true) => {
                        let mut record = record;
                        record.tags = old.tags.clone();
                        rows.put(&arn, record);
                    }
                    (_, false) => rows.put(&arn, record),
                }
                Ok(())
            })
            .await?;
        Ok(json!({ "CertificateArn": arn }))
    }

    fn find_certificate(&self, arn: &str) -> Result<CertificateRecord, ServiceError> {
        self.certificates
            .snapshot()
            .get(arn)
            .cloned()
            .ok_or_else(|| not_found(arn))
    }

    fn describe_certificate(
        &self,
        r: DescribeCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "acm:DescribeCertificate",
            std::slice::from_ref(&r.certificate_arn),
        )?;
        Ok(json!({ "Certificate": detail(&self.find_certificate(&r.certificate_arn)?) }))
    }

    fn get_certificate(
        &self,
        r: GetCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "acm:GetCertificate",
            std::slice::from_ref(&r.certificate_arn),
        )?;
        let c = self.find_certificate(&r.certificate_arn)?;
        let mut out = json!({ "Certificate": c.certificate_pem });
        if !c.chain_pem.is_empty() {
            out["CertificateChain"] = json!(c.chain_pem);
        }
        Ok(out)
    }

    fn list_certificates(
        &self,
        r: ListCertificatesRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize("acm:ListCertificates", &["*".to_string()])?;
        let size = match r.max_items {
            None => 1000,
            Some(n) if (1..=1000).contains(&n) => n as usize,
            Some(n) => {
                return Err(validation(format!(
                    "MaxItems must be between 1 and 1000; it is {n}."
                )))
            }
        };
        let statuses: Vec<&str> = r
            .certificate_statuses
            .iter()
            .flatten()
            .map(|s| s.as_str())
            .collect();
        let after = r.next_token.filter(|t| !t.is_empty());
        let snap = self.certificates.snapshot();
        let mut items = Vec::new();
        let mut next = None;
        for (arn, c) in snap.iter() {
            if after.as_deref().is_some_and(|a| arn.as_str() <= a) {
                continue;
            }
            let s = summary(c);
            if !statuses.is_empty() && !statuses.iter().any(|st| s["Status"] == *st) {
                continue;
            }
            if items.len() == size {
                next = items
                    .last()
                    .and_then(|v: &Value| v["CertificateArn"].as_str().map(str::to_string));
                break;
            }
            items.push(s);
        }
        let mut out = json!({ "CertificateSummaryList": items });
        if let Some(t) = next {
            out["NextToken"] = json!(t);
        }
        Ok(out)
    }

    async fn delete_certificate(
        &self,
        r: DeleteCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "acm:DeleteCertificate",
            std::slice::from_ref(&r.certificate_arn),
        )?;
        self.certificates
            .update(|rows| {
                if rows.get(&r.certificate_arn).is_none() {
                    return Err(not_found(&r.certificate_arn));
                }
                rows.delete(&r.certificate_arn);
                Ok(())
            })
            .await?;
        Ok(json!({}))
    }

    async fn retag(
        &self,
        arn: &str,
        f: impl FnOnce(&mut Vec<(String, String)>) -> Result<(), ServiceError>,
    ) -> Result<Value, ServiceError> {
        self.certificates
            .update(|rows| {
                let mut c = rows.get(arn).cloned().ok_or_else(|| not_found(arn))?;
                f(&mut c.tags)?;
                rows.put(arn, c);
                Ok(())
            })
            .await?;
        Ok(json!({}))
    }

    async fn add_tags(
        &self,
        r: AddTagsToCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "acm:AddTagsToCertificate",
            std::slice::from_ref(&r.certificate_arn),
        )?;
        check_tags(&r.tags)?;
        self.retag(&r.certificate_arn, |tags| {
            for t in r.tags {
                tags.retain(|(k, _)| *k != t.key);
                tags.push((t.key, t.value.unwrap_or_default()));
            }
            if tags.len() > 50 {
                return Err(ServiceError::new(
                    "TooManyTagsException",
                    400,
                    "A certificate can have at most 50 tags.",
                ));
            }
            Ok(())
        })
        .await
    }

    async fn remove_tags(
        &self,
        r: RemoveTagsFromCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "acm:RemoveTagsFromCertificate",
            std::slice::from_ref(&r.certificate_arn),
        )?;
        self.retag(&r.certificate_arn, |tags| {
            tags.retain(|(k, _)| !r.tags.iter().any(|t| t.key == *k));
            Ok(())
        })
        .await
    }

    fn list_tags(
        &self,
        r: ListTagsForCertificateRequest,
        gate: &Gate<'_>,
    ) -> Result<Value, ServiceError> {
        gate.authorize(
            "acm:ListTagsForCertificate",
            std::slice::from_ref(&r.certificate_arn),
        )?;
        let c = self.find_certificate(&r.certificate_arn)?;
        let tags: Vec<Value> = c
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(json!({ "Tags": tags }))
    }
}

impl gantry_core::CertificateStore for Secrets {
    fn exists(&self, arn: &str) -> bool {
        self.certificates.snapshot().contains_key(arn)
    }

    fn key_pair(&self, arn: &str) -> Option<KeyPair> {
        let c = self.certificates.snapshot().get(arn).cloned()?;
        let key = match self.sealer.open(&Self::seal_context(arn), &c.sealed_key) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(certificate = %arn, error = %e, "a certificate's key cannot be opened");
                return None;
            }
        };
        let rev = revision(&c);
        let mut chain = c.certificate_pem.into_bytes();
        if !chain.ends_with(b"\n") {
            chain.push(b'\n');
        }
        chain.extend_from_slice(c.chain_pem.as_bytes());
        Some(KeyPair {
            chain_pem: chain,
            key_pem: key,
            names: c.facts.names.clone(),
            revision: rev,
        })
    }

    fn revision(&self, arn: &str) -> Option<u64> {
        self.certificates.snapshot().get(arn).map(revision)
    }
}

/// A certificate's revision: when it was last imported, in microseconds.
fn revision(c: &CertificateRecord) -> u64 {
    (c.imported_at * 1e6) as u64
}

struct Acm(Arc<Secrets>);

impl Dispatch for Acm {
    fn dispatch<'a>(&'a self, call: Call<'a>) -> BoxFuture<'a, Result<Vec<u8>, ServiceError>> {
        Box::pin(async move {
            let b = body(&call)?;
            let s = &self.0;
            let g = &call.gate;
            let v = match call.operation {
                "ImportCertificate" => s.import_certificate(decode(b, INVALID)?, g).await?,
                "DescribeCertificate" => s.describe_certificate(decode(b, INVALID)?, g)?,
                "GetCertificate" => s.get_certificate(decode(b, INVALID)?, g)?,
                "ListCertificates" => s.list_certificates(decode(b, INVALID)?, g)?,
                "DeleteCertificate" => s.delete_certificate(decode(b, INVALID)?, g).await?,
                "AddTagsToCertificate" => s.add_tags(decode(b, INVALID)?, g).await?,
                "RemoveTagsFromCertificate" => s.remove_tags(decode(b, INVALID)?, g).await?,
                "ListTagsForCertificate" => s.list_tags(decode(b, INVALID)?, g)?,
                op if gantry_api::acm::Operation::from_name(op).is_some() => {
                    return Err(ServiceError::not_served(
                        "InvalidRequestException",
                        "Certificate Manager",
                        op,
                    ))
                }
                op => return Err(ServiceError::unknown_operation(TARGET_PREFIX, op)),
            };
            encode(&v)
        })
    }
}

/// ACM's entry: `CertificateManager`, AWS JSON 1.1, signed for `acm`, in the server's region.
pub fn entry(secrets: &Arc<Secrets>) -> ServiceEntry {
    ServiceEntry::json_1_1(
        gantry_api::acm::SIGNING_NAME,
        TARGET_PREFIX,
        secrets.region(),
        Arc::new(Acm(secrets.clone())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(names: &[&str], cn: &str) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_certificate_says_its_names_validity_and_key() {
        let (cert, key) = certificate(&["a.example", "b.example"], "a.example");
        let f = facts(cert.as_bytes()).unwrap();
        assert_eq!(f.domain, "a.example");
        assert_eq!(f.names, ["a.example", "b.example"]);
        assert_eq!(f.key_algorithm, "EC_prime256v1");
        assert_eq!(f.signature_algorithm, "SHA256WITHECDSA");
        assert!(f.not_after > f.not_before);
        assert!(f.subject.contains("a.example"));
        assert!(check_key(cert.as_bytes(), key.as_bytes()).is_ok());
        // The common name leads even when the names leave it out.
        let (other, other_key) = certificate(&["c.example"], "main.example");
        assert_eq!(
            facts(other.as_bytes()).unwrap().names,
            ["main.example", "c.example"]
        );
        assert!(check_key(cert.as_bytes(), other_key.as_bytes())
            .unwrap_err()
            .contains("does not match"));
        let both = format!("{cert}{other}");
        assert!(check_key(both.as_bytes(), key.as_bytes()).is_err());
        assert!(facts(b"not a certificate").is_err());
        assert!(check_key(
            cert.as_bytes(),
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
    }
}
