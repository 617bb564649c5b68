//! Values at rest: sealed with XChaCha20-Poly1305 under the installation's key (32 random
//! bytes in `<data-dir>/secrets.key`, mode 0600), each with a random 24-byte nonce and the
//! record it belongs to as associated data, so a sealed value moved to another record does not
//! open.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::path::Path;

const NONCE: usize = 24;

/// A sealed value that does not open: a wrong key, or a record changed outside gantry.
#[derive(Debug, thiserror::Error)]
#[error("a sealed value does not open (wrong key, or the record was altered)")]
pub struct Unsealable;

/// Seals and opens values with one key.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer with `key`.
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// The sealer of the key file at `path`, created (32 random bytes, mode 0600) when absent.
    pub fn open_or_create(path: &Path) -> std::io::Result<Sealer> {
        if let Ok(bytes) = std::fs::read(path) {
            let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                std::io::Error::other(format!(
                    "{} must hold 32 bytes, it holds {}",
                    path.display(),
                    bytes.len()
                ))
            })?;
            return Ok(Sealer::new(&key));
        }
        let key: [u8; 32] = rand::random();
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path)?;
        f.write_all(&key)?;
        f.sync_all()?;
        Ok(Sealer::new(&key))
    }

    /// `value` sealed for the record `context`, as base64 text.
    pub fn seal(&self, context: &str, value: &[u8]) -> String {
        let nonce: [u8; NONCE] = rand::random();
        // Encryption with a valid key and nonce cannot fail for inputs of any real size.
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(ct);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// The value `sealed` holds, if it was sealed for `context` with this key.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| Unsealable)?;
        if raw.len() < NONCE {
            return Err(Unsealable);
        }
        let (nonce, ct) = raw.split_at(NONCE);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_with_their_key_and_record() {
        let s = Sealer::new(&[7; 32]);
        let sealed = s.seal("secrets/db", b"hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(s.open("secrets/db", &sealed).unwrap(), b"hunter2");
        assert!(s.open("secrets/other", &sealed).is_err());
        assert!(Sealer::new(&[8; 32]).open("secrets/db", &sealed).is_err());
        assert!(s.open("secrets/db", "not base64!").is_err());
        assert!(s.open("secrets/db", "AAAA").is_err());
        // Two seals of one value differ (random nonces).
        assert_ne!(sealed, s.seal("secrets/db", b"hunter2"));
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("gantry-seal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.key");
        let a = Sealer::open_or_create(&path).unwrap();
        let sealed = a.seal("x", b"v");
        let b = Sealer::open_or_create(&path).unwrap();
        assert_eq!(b.open("x", &sealed).unwrap(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(Sealer::open_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
