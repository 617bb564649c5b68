//! Settings: command-line flags over environment variables over a JSON config file over
//! defaults. The admin access key lives in the data directory.

use anyhow::{bail, Context};
use clap::Args;
use gantry_auth::{KeySet, Secret};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The API port: fixed, and below Docker's dynamic host-port range (32768+).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8100";
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_ACCOUNT: &str = "000000000000";

#[derive(Args, Clone, Debug, Default)]
pub struct SettingsArgs {
    /// Address to serve the ECS API on [default: 127.0.0.1:8100]
    #[arg(long, env = "GANTRY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where state and credentials live [default: ~/.local/share/gantry]
    #[arg(long, env = "GANTRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The region ARNs carry and requests must be signed for [default: us-east-1]
    #[arg(long, env = "GANTRY_REGION")]
    pub region: Option<String>,
    /// The account id ARNs carry [default: 000000000000]
    #[arg(long, env = "GANTRY_ACCOUNT_ID")]
    pub account_id: Option<String>,
    /// Serve HTTPS with a certificate generated into the data directory on first start
    /// (`<data-dir>/tls/`; clients trust `tls/ca.pem`, which `gantry credentials` names)
    #[arg(long, env = "GANTRY_TLS")]
    pub tls: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key)
    #[arg(long, env = "GANTRY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, env = "GANTRY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A JSON config file: {"listen", "dataDir", "region", "accountId", "tls", "tlsCert", "tlsKey",
    /// "keys": [{"accessKeyId", "secretAccessKey", "user"}]}; a key's "user" is "root" (the
    /// default: allowed everything) or an IAM user's name (that user's policies apply)
    #[arg(long, env = "GANTRY_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    region: Option<String>,
    account_id: Option<String>,
    #[serde(default)]
    keys: Vec<KeyEntry>,
    /// `true`: HTTPS with a generated certificate.
    tls: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Generated into `<data-dir>/tls/` on first start, with its own CA.
    Generated,
    /// Given: a PEM chain and key.
    Files { cert: PathBuf, key: PathBuf },
}

/// An access key: the admin key file's content, and the entries of `keys` in the config file.
#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct KeyEntry {
    pub access_key_id: String,
    pub secret_access_key: String,
    #[serde(default)]
    pub user: Option<String>,
}

pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    /// HTTPS, when set; plain HTTP otherwise.
    pub tls: Option<Tls>,
    extra_keys: Vec<KeyEntry>,
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; give --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/gantry"))
}

impl Settings {
    pub fn resolve(args: SettingsArgs) -> anyhow::Result<Settings> {
        let file: FileConfig = match &args.config {
            None => FileConfig::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
        };
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN.parse()?,
        };
        let data_dir = match args.data_dir.or(file.data_dir) {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let region = args
            .region
            .or(file.region)
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            bail!("invalid region {region:?}: use a name like us-east-1");
        }
        let account_id = args
            .account_id
            .or(file.account_id)
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string());
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("invalid account id {account_id:?}: it must be 12 digits");
        }
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(Tls::Files { cert, key }),
            (None, None) if args.tls || file.tls == Some(true) => Some(Tls::Generated),
            (None, None) => None,
            _ => bail!("give both tlsCert and tlsKey, or neither"),
        };
        Ok(Settings {
            listen,
            data_dir,
            region,
            account_id,
            tls,
            extra_keys: file.keys,
        })
    }

    fn key_file(&self) -> PathBuf {
        self.data_dir.join("credentials.json")
    }

    /// The admin key, created on first use; `true` when it was created now.
    pub fn admin_key(&self) -> anyhow::Result<(KeyEntry, bool)> {
        let path = self.key_file();
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let key: KeyEntry = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            return Ok((key, false));
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let key = KeyEntry {
            access_key_id: format!(
                "AKGT{}",
                random_chars(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
            ),
            secret_access_key: random_chars(
                40,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            ),
            user: Some("root".to_string()),
        };
        write_private(&path, &serde_json::to_vec_pretty(&key)?)?;
        Ok((key, true))
    }

    /// The token agents join with, created on first use (`<data-dir>/join-token`).
    pub fn join_token(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join("join-token");
        if path.exists() {
            let t = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(t.trim().to_string());
        }
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating {}", self.data_dir.display()))?;
        let token = random_chars(40, b"abcdefghijklmnopqrstuvwxyz0123456789");
        write_private(&path, token.as_bytes())?;
        Ok(token)
    }

    /// Every key the server accepts: the admin key and the config file's.
    pub fn key_set(&self, admin: &KeyEntry) -> KeySet {
        let mut keys = KeySet::new();
        for k in std::iter::once(admin).chain(self.extra_keys.iter()) {
            keys.insert(
                k.access_key_id.clone(),
                Secret::long_term(
                    k.secret_access_key.clone(),
                    match k.user.as_deref() {
                        None | Some("root") => "root".to_string(),
                        Some(name) => format!("user/{}", name.trim_start_matches("user/")),
                    },
                ),
            );
        }
        keys
    }

    pub fn endpoint(&self) -> String {
        let host = if self.listen.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            match self.listen {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        };
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{host}:{}", self.listen.port())
    }

    /// The CA file clients trust, when gantry generated its certificate.
    pub fn ca_file(&self) -> Option<PathBuf> {
        (self.tls == Some(Tls::Generated)).then(|| crate::tls::ca_path(&self.data_dir))
    }

    pub fn export_line(&self, k: &KeyEntry) -> String {
        let mut line = format!(
            "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_DEFAULT_REGION={} AWS_ENDPOINT_URL={} AWS_DISABLE_HOST_PREFIX_INJECTION=true",
            k.access_key_id,
            k.secret_access_key,
            self.region,
            self.endpoint()
        );
        if let Some(ca) = self.ca_file() {
            line.push_str(&format!(" AWS_CA_BUNDLE={}", ca.display()));
        }
        line
    }
}

fn random_chars(n: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

pub(crate) fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// A duration written as `30`, `30s`, `500ms`, `5m` or `3h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: use e.g. 30s, 500ms, 5m, 3h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, Settings, SettingsArgs, Tls};
    use std::time::Duration;

    fn settings(config: &str, args: SettingsArgs) -> anyhow::Result<Settings> {
        let dir = std::env::temp_dir().join(format!("gantry-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", config.len()));
        std::fs::write(&path, config)?;
        Settings::resolve(SettingsArgs {
            config: Some(path),
            data_dir: Some(dir.join("data")),
            ..args
        })
    }

    #[test]
    fn https_comes_from_the_flags_or_the_config_file() {
        let plain = settings("{}", SettingsArgs::default()).unwrap();
        assert_eq!(plain.tls, None);
        assert!(plain.endpoint().starts_with("http://"));
        assert_eq!(plain.ca_file(), None);
        let generated = settings(r#"{"tls": true}"#, SettingsArgs::default()).unwrap();
        assert_eq!(generated.tls, Some(Tls::Generated));
        assert!(generated.endpoint().starts_with("https://"));
        assert!(generated.ca_file().unwrap().ends_with("tls/ca.pem"));
        let flag = settings(
            "{}",
            SettingsArgs {
                tls: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(flag.tls, Some(Tls::Generated));
        let given = settings(
            r#"{"tlsCert": "c.pem", "tlsKey": "k.pem"}"#,
            SettingsArgs::default(),
        )
        .unwrap();
        assert!(matches!(given.tls, Some(Tls::Files { .. })));
        assert_eq!(
            given.ca_file(),
            None,
            "a given certificate's CA is the user's own"
        );
        assert!(settings(r#"{"tlsCert": "c.pem"}"#, SettingsArgs::default()).is_err());
    }

    #[test]
    fn config_keys_are_the_root_unless_they_name_a_user() {
        let s = settings(
            r#"{"keys": [{"accessKeyId": "AK1", "secretAccessKey": "s"},
                         {"accessKeyId": "AK2", "secretAccessKey": "s", "user": "deployer"}]}"#,
            SettingsArgs::default(),
        )
        .unwrap();
        let admin = super::KeyEntry {
            access_key_id: "AKADMIN".into(),
            secret_access_key: "s".into(),
            user: Some("root".into()),
        };
        let keys = s.key_set(&admin);
        assert_eq!(keys.get("AKADMIN").unwrap().user, "root");
        assert_eq!(keys.get("AK1").unwrap().user, "root");
        assert_eq!(keys.get("AK2").unwrap().user, "user/deployer");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3h").unwrap(), Duration::from_secs(10800));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
