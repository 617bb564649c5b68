//! Task-level limits: a cgroup per FARGATE task, with the task's cpu and memory as hard limits on
//! all its containers together (Docker's `--cgroup-parent`, cgroupfs driver). cgroup v1 (the
//! `memory` and `cpu` hierarchies) and v2 (one unified hierarchy) are both handled.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// CFS period for cpu quotas, in microseconds.
const PERIOD_US: u64 = 100_000;

/// A task's cgroup: the parent its containers join, and the directories made for it.
#[derive(Debug, Clone)]
pub struct TaskCgroup {
    /// The value for Docker's cgroup parent: `/gantry/<task id>`.
    pub parent: String,
    dirs: Vec<PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    std::fs::write(path, value).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// The quota for `cpu_units` (1024 units = one CPU).
pub fn cpu_quota_us(cpu_units: u64) -> u64 {
    (cpu_units * PERIOD_US / 1024).max(1000)
}

fn unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// The directories of a task's cgroup: one on v2, the memory and cpu ones on v1.
fn dirs(task_id: &str) -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    if unified() {
        vec![root.join("gantry").join(task_id)]
    } else {
        vec![
            root.join("memory/gantry").join(task_id),
            root.join("cpu/gantry").join(task_id),
        ]
    }
}

/// The cgroup an earlier run of the agent made for the task, if it is still there (a task
/// adopted after a restart, or one being reaped).
pub fn existing(task_id: &str) -> Option<TaskCgroup> {
    let dirs: Vec<PathBuf> = dirs(task_id).into_iter().filter(|d| d.is_dir()).collect();
    (!dirs.is_empty()).then(|| TaskCgroup {
        parent: format!("/gantry/{task_id}"),
        dirs,
    })
}

/// Creates the task's cgroup with its limits.
pub fn create(
    task_id: &str,
    cpu_units: Option<u64>,
    memory_mib: Option<u64>,
) -> Result<TaskCgroup, String> {
    let parent = format!("/gantry/{task_id}");
    let root = Path::new(ROOT);
    let dirs = dirs(task_id);
    if unified() {
        // v2: enable cpu and memory for gantry's subtree, then limit the task's group.
        let gantry = root.join("gantry");
        std::fs::create_dir_all(&gantry)
            .map_err(|e| format!("creating {}: {e}", gantry.display()))?;
        let _ = write(&root.join("cgroup.subtree_control"), "+cpu +memory");
        let _ = write(&gantry.join("cgroup.subtree_control"), "+cpu +memory");
        let dir = &dirs[0];
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if let Some(m) = memory_mib {
            write(&dir.join("memory.max"), &(m * 1024 * 1024).to_string())?;
        }
        if let Some(c) = cpu_units {
            write(
                &dir.join("cpu.max"),
                &format!("{} {PERIOD_US}", cpu_quota_us(c)),
            )?;
        }
    } else {
        let (memory, cpu) = (&dirs[0], &dirs[1]);
        for d in [memory, cpu] {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        }
        if let Some(m) = memory_mib {
            write(
                &memory.join("memory.limit_in_bytes"),
                &(m * 1024 * 1024).to_string(),
            )?;
        }
        if let Some(c) = cpu_units {
            write(&cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
            write(&cpu.join("cpu.cfs_quota_us"), &cpu_quota_us(c).to_string())?;
        }
    }
    Ok(TaskCgroup { parent, dirs })
}

impl TaskCgroup {
    /// How many times the kernel's OOM killer acted in the task's cgroup.
    pub fn oom_kills(&self) -> u64 {
        for d in &self.dirs {
            for (file, key) in [
                ("memory.events", "oom_kill"),
                ("memory.oom_control", "oom_kill"),
            ] {
                if let Ok(text) = std::fs::read_to_string(d.join(file)) {
                    if let Some(n) = text
                        .lines()
                        .find_map(|l| l.strip_prefix(key).map(str::trim))
                        .and_then(|n| n.parse().ok())
                    {
                        return n;
                    }
                }
            }
        }
        0
    }
    /// Removes the directories (after the task's containers are gone).
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotas() {
        assert_eq!(super::cpu_quota_us(1024), 100_000);
        assert_eq!(super::cpu_quota_us(256), 25_000);
        assert_eq!(super::cpu_quota_us(1), 1000);
    }
}
