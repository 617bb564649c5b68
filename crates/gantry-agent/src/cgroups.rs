//! Task-level limits: a cgroup per FARGATE task, with the task's cpu and memory as hard limits on
//! all its containers together (Docker's `--cgroup-parent`). cgroup v1 (the `memory` and `cpu`
//! hierarchies) and v2 (one unified hierarchy) are both handled, under either of Docker's cgroup
//! drivers: with `cgroupfs` the parent is the path `/gantry/<task id>`; with `systemd` it is the
//! slice `gantry-<task id>.slice`, which systemd places under `gantry.slice`.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// CFS period for cpu quotas, in microseconds.
const PERIOD_US: u64 = 100_000;

/// How the container engine manages cgroups (Docker's `CgroupDriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupDriver {
    /// The engine writes the cgroup filesystem itself; a cgroup parent is a path.
    #[default]
    Cgroupfs,
    /// systemd owns the cgroups; a cgroup parent is a slice unit name.
    Systemd,
}

impl CgroupDriver {
    /// Docker's name for a driver (`cgroupfs`, `systemd`); anything else counts as cgroupfs.
    pub fn from_docker(name: &str) -> CgroupDriver {
        if name.eq_ignore_ascii_case("systemd") {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        }
    }
}

/// Which cgroup hierarchy the host mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Separate hierarchies per controller (`memory`, `cpu`, ...).
    V1,
    /// One unified hierarchy.
    V2,
}

impl CgroupVersion {
    /// The host's, from what is mounted at `/sys/fs/cgroup`.
    pub fn of_host() -> CgroupVersion {
        if Path::new(ROOT).join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// Where a task's cgroup goes, for a driver and a cgroup version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLayout {
    /// The value for Docker's cgroup parent.
    pub parent: String,
    /// The task's directories: one on v2; the memory and the cpu one on v1.
    pub dirs: Vec<PathBuf>,
    /// v2: the groups whose `cgroup.subtree_control` must enable cpu and memory, outermost
    /// first (empty on v1).
    pub delegate: Vec<PathBuf>,
}

/// A task id as a systemd slice name part: systemd reads `-` as nesting, and slice names allow
/// only letters, digits, `_`, `.`, `:` and `\`; anything else becomes `_`.
fn slice_part(task_id: &str) -> String {
    let part: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if part.is_empty() {
        "_".into()
    } else {
        part
    }
}

/// The layout of a task's cgroup (pure: where it goes, not whether it exists).
pub fn layout(driver: CgroupDriver, version: CgroupVersion, task_id: &str) -> CgroupLayout {
    let root = Path::new(ROOT);
    // The task's group relative to a hierarchy's root, and the parent Docker is given.
    let (group, parent, top) = match driver {
        CgroupDriver::Cgroupfs => (
            PathBuf::from("gantry").join(task_id),
            format!("/gantry/{task_id}"),
            PathBuf::from("gantry"),
        ),
        CgroupDriver::Systemd => {
            let slice = format!("gantry-{}.slice", slice_part(task_id));
            (
                PathBuf::from("gantry.slice").join(&slice),
                slice,
                PathBuf::from("gantry.slice"),
            )
        }
    };
    match version {
        CgroupVersion::V2 => CgroupLayout {
            parent,
            dirs: vec![root.join(&group)],
            delegate: vec![root.to_path_buf(), root.join(top)],
        },
        CgroupVersion::V1 => CgroupLayout {
            parent,
            dirs: vec![
                root.join("memory").join(&group),
                root.join("cpu").join(&group),
            ],
            delegate: Vec::new(),
        },
    }
}

/// A task's cgroup: the parent its containers join, and the directories made for it.
#[derive(Debug, Clone)]
pub struct TaskCgroup {
    /// The value for Docker's cgroup parent: `/gantry/<task id>` (cgroupfs) or
    /// `gantry-<task id>.slice` (systemd).
    pub parent: String,
    dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The quota for `cpu_units` (1024 units = one CPU).
pub fn cpu_quota_us(cpu_units: u64) -> u64 {
    (cpu_units.saturating_mul(PERIOD_US) / 1024).max(1000)
}

/// The cgroup an earlier run of the agent made for the task, if it is still there (a task
/// adopted after a restart, or one being reaped).
pub fn existing(driver: CgroupDriver, task_id: &str) -> Option<TaskCgroup> {
    let l = layout(driver, CgroupVersion::of_host(), task_id);
    let dirs: Vec<PathBuf> = l.dirs.into_iter().filter(|d| d.is_dir()).collect();
    (!dirs.is_empty()).then_some(TaskCgroup {
        parent: l.parent,
        dirs,
    })
}

/// Creates the task's cgroup with its limits.
pub fn create(
    driver: CgroupDriver,
    task_id: &str,
    cpu_units: Option<u64>,
    memory_mib: Option<u64>,
) -> Result<TaskCgroup, String> {
    let version = CgroupVersion::of_host();
    let CgroupLayout {
        parent,
        dirs,
        delegate,
    } = layout(driver, version, task_id);
    if driver == CgroupDriver::Systemd {
        // systemd applies a slice's own properties when it starts the slice for the first
        // container; set the limits there too, so that they are not reset (best effort: the
        // files below are written either way).
        set_slice_properties(&parent, cpu_units, memory_mib);
    }
    if version == CgroupVersion::V2 {
        // v2: enable cpu and memory for gantry's subtree, then limit the task's group.
        if let Some(top) = delegate.last() {
            std::fs::create_dir_all(top).map_err(|e| format!("creating {}: {e}", top.display()))?;
        }
        for d in &delegate {
            let _ = write(&d.join("cgroup.subtree_control"), "+cpu +memory");
        }
        let Some(dir) = dirs.first() else {
            return Err("no cgroup directory for the task".into());
        };
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if let Some(m) = memory_mib {
            write(
                &dir.join("memory.max"),
                &m.saturating_mul(1024 * 1024).to_string(),
            )?;
        }
        if let Some(c) = cpu_units {
            write(
                &dir.join("cpu.max"),
                &format!("{} {PERIOD_US}", cpu_quota_us(c)),
            )?;
        }
    } else {
        let [memory, cpu] = dirs.as_slice() else {
            return Err("no cgroup directories for the task".into());
        };
        for d in [memory, cpu] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        if let Some(m) = memory_mib {
            write(
                &memory.join("memory.limit_in_bytes"),
                &m.saturating_mul(1024 * 1024).to_string(),
            )?;
        }
        if let Some(c) = cpu_units {
            write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
            write(&cpu.join("cpu.cfs_quota_us"), &cpu_quota_us(c).to_string())?;
        }
    }
    Ok(TaskCgroup { parent, dirs })
}

/// `systemctl set-property --runtime` for a task's slice: its memory and cpu limits.
fn set_slice_properties(slice: &str, cpu_units: Option<u64>, memory_mib: Option<u64>) {
    let mut props = Vec::new();
    if let Some(m) = memory_mib {
        props.push(format!("MemoryMax={}", m.saturating_mul(1024 * 1024)));
    }
    if let Some(c) = cpu_units {
        // CPUQuota is a percentage of one CPU.
        props.push(format!("CPUQuota={}%", cpu_quota_us(c) * 100 / PERIOD_US));
    }
    if props.is_empty() {
        return;
    }
    match std::process::Command::new("systemctl")
        .args(["set-property", "--runtime", slice])
        .args(&props)
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            tracing::warn!(%slice, error = %String::from_utf8_lossy(&o.stderr).trim(), "systemctl set-property failed")
        }
        Err(e) => tracing::warn!(%slice, error = %e, "running systemctl failed"),
    }
}

impl TaskCgroup {
    /// How many times the kernel's OOM killer acted in the task's cgroup.
    pub fn oom_kills(&self) -> u64 {
        self.dirs
            .iter()
            .flat_map(|d| ["memory.events", "memory.oom_control"].map(|f| d.join(f)))
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .find_map(|text| counter(&text, "oom_kill"))
            .unwrap_or(0)
    }
    /// Removes the directories (after the task's containers are gone).
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The value of `key` in a cgroup's flat keyed file (`memory.events`, `memory.oom_control`):
/// the whole first word must be the key, as `oom_kill_disable` precedes `oom_kill` in v1.
fn counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_match_the_whole_key() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(counter(v1, "oom_kill"), Some(2));
        let v2 = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(counter(v2, "oom_kill"), Some(1));
        assert_eq!(counter("oom_kill_disable 0\n", "oom_kill"), None);
    }

    #[test]
    fn the_layout_follows_the_driver_and_the_cgroup_version() {
        let id = "0123456789abcdef";
        let p = |s: &str| PathBuf::from(s);
        // cgroupfs: as it always was.
        assert_eq!(
            layout(CgroupDriver::Cgroupfs, CgroupVersion::V2, id),
            CgroupLayout {
                parent: "/gantry/0123456789abcdef".into(),
                dirs: vec![p("/sys/fs/cgroup/gantry/0123456789abcdef")],
                delegate: vec![p("/sys/fs/cgroup"), p("/sys/fs/cgroup/gantry")],
            }
        );
        assert_eq!(
            layout(CgroupDriver::Cgroupfs, CgroupVersion::V1, id),
            CgroupLayout {
                parent: "/gantry/0123456789abcdef".into(),
                dirs: vec![
                    p("/sys/fs/cgroup/memory/gantry/0123456789abcdef"),
                    p("/sys/fs/cgroup/cpu/gantry/0123456789abcdef"),
                ],
                delegate: vec![],
            }
        );
        // systemd: a slice, nested under gantry.slice by its name.
        assert_eq!(
            layout(CgroupDriver::Systemd, CgroupVersion::V2, id),
            CgroupLayout {
                parent: "gantry-0123456789abcdef.slice".into(),
                dirs: vec![p(
                    "/sys/fs/cgroup/gantry.slice/gantry-0123456789abcdef.slice"
                )],
                delegate: vec![p("/sys/fs/cgroup"), p("/sys/fs/cgroup/gantry.slice")],
            }
        );
        assert_eq!(
            layout(CgroupDriver::Systemd, CgroupVersion::V1, id),
            CgroupLayout {
                parent: "gantry-0123456789abcdef.slice".into(),
                dirs: vec![
                    p("/sys/fs/cgroup/memory/gantry.slice/gantry-0123456789abcdef.slice"),
                    p("/sys/fs/cgroup/cpu/gantry.slice/gantry-0123456789abcdef.slice"),
                ],
                delegate: vec![],
            }
        );
    }

    #[test]
    fn slice_names_cannot_nest_or_escape() {
        // A `-` would nest the slice deeper; `/` and `..` are not slice characters.
        for (id, slice) in [
            ("a-b", "gantry-a_b.slice"),
            ("../x", "gantry-___x.slice"),
            ("", "gantry-_.slice"),
            ("é", "gantry-_.slice"),
        ] {
            let l = layout(CgroupDriver::Systemd, CgroupVersion::V2, id);
            assert_eq!(l.parent, slice);
            assert_eq!(
                l.dirs,
                vec![Path::new("/sys/fs/cgroup/gantry.slice").join(slice)]
            );
        }
    }

    #[test]
    fn docker_driver_names() {
        assert_eq!(CgroupDriver::from_docker("systemd"), CgroupDriver::Systemd);
        assert_eq!(
            CgroupDriver::from_docker("cgroupfs"),
            CgroupDriver::Cgroupfs
        );
        assert_eq!(CgroupDriver::from_docker(""), CgroupDriver::Cgroupfs);
    }

    #[test]
    fn quotas() {
        assert_eq!(super::cpu_quota_us(1024), 100_000);
        assert_eq!(super::cpu_quota_us(256), 25_000);
        assert_eq!(super::cpu_quota_us(1), 1000);
        assert!(super::cpu_quota_us(u64::MAX) > 0);
    }
}
