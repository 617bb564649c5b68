//! What a task's containers are told about the agent's endpoint: the environment variables
//! naming it, and the ids in its paths. Pure, given the agent's key.

use gantry_api::agent::AssignedTask;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// The address tasks reach the endpoint at (port 80), as on ECS.
pub const LINK_LOCAL: &str = "169.254.170.2";

/// The endpoint's names for tasks: its base URL and the key its credential ids derive from.
#[derive(Clone)]
pub struct Names {
    /// `http://169.254.170.2`
    pub base: String,
    key: [u8; 32],
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// The id in a task's container paths: `<task id>-<index of the container>`, as Fargate's.
pub fn container_ref(task_arn: &str, index: usize) -> String {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    format!("{id}-{index}")
}

/// `(task id, container index)` of a [`container_ref`].
pub fn parse_container_ref(r: &str) -> Option<(&str, usize)> {
    let (task, index) = r.rsplit_once('-')?;
    Some((task, index.parse().ok()?))
}

impl Names {
    pub fn new(base: impl Into<String>, key: [u8; 32]) -> Names {
        Names {
            base: base.into(),
            key,
        }
    }

    /// The names with the key kept in `path`, made (32 random bytes, mode 0600) the first time.
    pub fn open(base: impl Into<String>, path: &Path) -> std::io::Result<Names> {
        let key = match std::fs::read(path) {
            Ok(k) if k.len() == 32 => k,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k: [u8; 32] = rand::random();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, k)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
                }
                std::fs::rename(&tmp, path)?;
                k.to_vec()
            }
            Err(e) => return Err(e),
        };
        let mut k = [0u8; 32];
        k.copy_from_slice(&key);
        Ok(Names::new(base, k))
    }

    /// The credentials id of a task: unguessable without the agent's key, the same across
    /// agent restarts (its containers keep the variable they were created with).
    pub fn credentials_id(&self, task_arn: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        mac.update(b"credentials\0");
        mac.update(task_arn.as_bytes());
        let b = mac.finalize().into_bytes();
        let hex: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    /// The variables the endpoint gives container `index` of `a`: (name, value, whether a
    /// variable of the task's own wins over it).
    pub fn env(&self, a: &AssignedTask, index: usize) -> Vec<(String, String, bool)> {
        let task_arn = a.task.task_arn.clone().unwrap_or_default();
        let r = container_ref(&task_arn, index);
        let mut out = vec![
            (
                "ECS_CONTAINER_METADATA_URI_V4".to_string(),
                format!("{}/v4/{r}", self.base),
                false,
            ),
            (
                "ECS_CONTAINER_METADATA_URI".to_string(),
                format!("{}/v3/{r}", self.base),
                false,
            ),
            (
                "ECS_AGENT_URI".to_string(),
                format!("{}/api/{r}", self.base),
                false,
            ),
            ("AWS_ENDPOINT_URL".to_string(), self.base.clone(), true),
        ];
        let role = a
            .task
            .overrides
            .as_ref()
            .and_then(|o| o.task_role_arn.as_ref())
            .or(a.task_definition.task_role_arn.as_ref());
        if role.is_some() {
            out.push((
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI".to_string(),
                format!("/v2/credentials/{}", self.credentials_id(&task_arn)),
                false,
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_ids_are_stable_per_key_and_differ_between_tasks_and_keys() {
        let a = Names::new("http://x", [1; 32]);
        let b = Names::new("http://x", [2; 32]);
        let id = a.credentials_id("arn:aws:ecs:r:1:task/c/t1");
        assert_eq!(id.len(), 36);
        assert_eq!(id, a.credentials_id("arn:aws:ecs:r:1:task/c/t1"));
        assert_ne!(id, a.credentials_id("arn:aws:ecs:r:1:task/c/t2"));
        assert_ne!(id, b.credentials_id("arn:aws:ecs:r:1:task/c/t1"));
    }

    #[test]
    fn container_refs_name_the_task_and_the_container() {
        let r = container_ref("arn:aws:ecs:r:1:task/c/0123abcd", 2);
        assert_eq!(r, "0123abcd-2");
        assert_eq!(parse_container_ref(&r), Some(("0123abcd", 2)));
        assert_eq!(parse_container_ref("nope"), None);
    }

    #[test]
    fn key_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("gantry-names-{}", std::process::id()));
        let path = dir.join("endpoint.key");
        let _ = std::fs::remove_file(&path);
        let a = Names::open("http://x", &path).unwrap();
        let b = Names::open("http://x", &path).unwrap();
        assert_eq!(a.credentials_id("t"), b.credentials_id("t"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
