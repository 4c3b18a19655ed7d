//! Resource limits for the host runner: each container with `limits.memory` or `limits.cpu`
//! runs in a cgroup of its own, as the kubelet's runtime would put it, and an OOM kill there is
//! reported as `OOMKilled` (exit 137).
//!
//! - **cgroup v2** (`memory` in the unified hierarchy's `cgroup.controllers`): the container's
//!   cgroup is a sibling of ours (`<parent>/woodpecker-sim-<pid>-<n>`), since a cgroup with
//!   processes (ours) cannot hand controllers to children; or a child of ours when ours already
//!   delegates `memory` (the root cgroup). `memory.max`, `memory.swap.max = 0`, `cpu.max`; OOM
//!   kills from `memory.events` (`oom_kill`).
//! - **cgroup v1** (a `memory` hierarchy mounted): a child of our own memory cgroup
//!   (`/proc/self/cgroup`), `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` to the same,
//!   so swap does not hide the overrun), OOM kills from `memory.oom_control` (`oom_kill`, Linux
//!   4.13+) or, on older kernels, `memory.failcnt` with a SIGKILL; CPU in the `cpu` hierarchy
//!   (`cpu.cfs_quota_us` over a 100 ms period) when it is mounted and writable.
//! - **Neither** (no controller, not writable, not Linux): containers run without limits and the
//!   sim says so once on stderr at start; a step over its memory limit then is not killed.
//!
//! The process joins its cgroup itself between fork and exec (before anything of the command
//! runs); after the container ends, whatever is left in the cgroup is killed and the cgroup removed.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

/// The limits of one container, from `resources.limits`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpu_millis: Option<u64>,
}

impl Limits {
    pub fn of(container: &Value) -> Limits {
        let l = &container["resources"]["limits"];
        Limits {
            memory_bytes: quantity(&l["memory"]).map(|v| v.ceil() as u64).filter(|b| *b > 0),
            cpu_millis: quantity(&l["cpu"])
                .map(|v| (v * 1000.0).ceil() as u64)
                .filter(|m| *m > 0),
        }
    }

    pub fn any(&self) -> bool {
        self.memory_bytes.is_some() || self.cpu_millis.is_some()
    }
}

/// A Kubernetes quantity as a number (`32Mi`, `1.5G`, `500m`, `2e3`); `None` when it does not
/// parse (the apiserver would have refused it).
fn quantity(v: &Value) -> Option<f64> {
    if let Some(n) = v.as_f64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(num * mult)
}

#[derive(Debug, Clone)]
enum Hierarchy {
    /// Where container cgroups go (the directory must exist and be ours to write).
    V2 {
        parent: PathBuf,
    },
    V1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
}

/// What this machine allows: limits, or why not.
#[derive(Debug, Clone)]
pub struct Support(Result<Hierarchy, String>);

static SUPPORT: OnceLock<Support> = OnceLock::new();
static WARNED: OnceLock<()> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Detects once per process what the machine allows.
pub fn support() -> &'static Support {
    SUPPORT.get_or_init(|| Support(detect()))
}

/// Says once per process (on stderr) when limits cannot be enforced.
pub fn warn_once() {
    if let Err(why) = &support().0 {
        WARNED.get_or_init(|| {
            eprintln!(
                "warning: the simulated node cannot enforce container limits ({why}): containers run without memory or CPU limits, so a step over its memory limit is not OOM-killed"
            );
        });
    }
}

impl Support {
    /// Why limits cannot be enforced, or `None` when they can.
    pub fn unavailable(&self) -> Option<&str> {
        self.0.as_ref().err().map(String::as_str)
    }

    /// The container cgroups this process has now (for tests: what a running container got,
    /// and that nothing is left behind).
    pub fn container_cgroups(&self) -> Vec<PathBuf> {
        let parents: Vec<&PathBuf> = match &self.0 {
            Ok(Hierarchy::V2 { parent }) => vec![parent],
            Ok(Hierarchy::V1 { memory, cpu }) => std::iter::once(memory).chain(cpu).collect(),
            Err(_) => Vec::new(),
        };
        let prefix = format!("woodpecker-sim-{}-", std::process::id());
        let mut out: Vec<PathBuf> = parents
            .into_iter()
            .filter_map(|p| std::fs::read_dir(p).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }
}

/// What detection reads of the process: `/proc/self/mounts` and `/proc/self/cgroup`.
struct ProcView {
    mounts: String,
    cgroup: String,
}

impl ProcView {
    fn read() -> ProcView {
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        ProcView {
            mounts: read("/proc/self/mounts"),
            cgroup: read("/proc/self/cgroup"),
        }
    }

    /// The process's cgroup in the hierarchy of `controller` (`None`: the unified one).
    fn own_cgroup(&self, controller: Option<&str>) -> Option<String> {
        own_cgroup(&self.cgroup, controller)
    }

    fn mount_point(&self, controller: Option<&str>) -> Option<PathBuf> {
        mount_point(&self.mounts, controller)
    }
}

fn own_cgroup(text: &str, controller: Option<&str>) -> Option<String> {
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = match controller {
            None => ctrls.is_empty(),
            Some(c) => ctrls.split(',').any(|x| x == c),
        };
        hit.then(|| path.to_string())
    })
}

/// The mount point of a cgroup hierarchy (`cgroup2`, or v1 with `controller` in its options).
fn mount_point(text: &str, controller: Option<&str>) -> Option<PathBuf> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        if f.len() < 4 {
            return None;
        }
        let ok = match controller {
            None => f[2] == "cgroup2",
            Some(c) => f[2] == "cgroup" && f[3].split(',').any(|o| o == c),
        };
        ok.then(|| PathBuf::from(f[1]))
    })
}

fn join(mount: &Path, cg: &str) -> PathBuf {
    mount.join(cg.trim_start_matches('/'))
}

/// Creates and removes a probe directory: whether we may make cgroups under `dir`.
fn writable(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!("woodpecker-sim-probe-{}", std::process::id()));
    std::fs::create_dir(&probe)?;
    std::fs::remove_dir(&probe)
}

fn detect() -> Result<Hierarchy, String> {
    detect_in(&ProcView::read())
}

fn detect_in(proc: &ProcView) -> Result<Hierarchy, String> {
    let mut why = Vec::new();
    // v2 first: the memory controller in the unified hierarchy.
    if let (Some(mount), Some(own)) = (proc.mount_point(None), proc.own_cgroup(None)) {
        let me = join(&mount, &own);
        let has = |dir: &Path, file: &str| {
            std::fs::read_to_string(dir.join(file)).is_ok_and(|t| t.split_whitespace().any(|c| c == "memory"))
        };
        if has(&me, "cgroup.controllers") {
            let parent = me.parent().filter(|_| own != "/").map(Path::to_path_buf);
            let candidates = [
                has(&me, "cgroup.subtree_control").then(|| me.clone()),
                parent.filter(|p| has(p, "cgroup.subtree_control")),
            ];
            for dir in candidates.into_iter().flatten() {
                match writable(&dir) {
                    Ok(()) => return Ok(Hierarchy::V2 { parent: dir }),
                    Err(e) => why.push(format!("cgroup v2: cannot create cgroups in {}: {e}", dir.display())),
                }
            }
            if why.is_empty() {
                why.push(format!(
                    "cgroup v2: the memory controller is not delegated below {} (no cgroup.subtree_control with memory)",
                    me.display()
                ));
            }
        } else {
            why.push(format!(
                "cgroup v2: no memory controller in {}/cgroup.controllers",
                me.display()
            ));
        }
    }
    if let (Some(mount), Some(own)) = (proc.mount_point(Some("memory")), proc.own_cgroup(Some("memory"))) {
        let memory = join(&mount, &own);
        match writable(&memory) {
            Ok(()) => {
                let cpu = match (proc.mount_point(Some("cpu")), proc.own_cgroup(Some("cpu"))) {
                    (Some(m), Some(o)) => Some(join(&m, &o)).filter(|d| writable(d).is_ok()),
                    _ => None,
                };
                return Ok(Hierarchy::V1 { memory, cpu });
            }
            Err(e) => why.push(format!("cgroup v1: cannot create cgroups in {}: {e}", memory.display())),
        }
    } else {
        why.push("cgroup v1: no memory hierarchy mounted".into());
    }
    Err(why.join("; "))
}

/// One container's cgroup(s), removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    /// Every directory the process joins (v1: memory and maybe cpu; v2: one).
    dirs: Vec<PathBuf>,
    v2: bool,
}

fn write(path: PathBuf, text: &str) -> io::Result<()> {
    std::fs::write(&path, text).map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
}

impl Cgroup {
    /// Makes the cgroup(s) for a container with `limits`; `Ok(None)` when the machine cannot
    /// (already warned at start) or there is nothing to limit.
    pub fn create(limits: Limits) -> io::Result<Option<Cgroup>> {
        if !limits.any() {
            return Ok(None);
        }
        let Ok(h) = &support().0 else { return Ok(None) };
        Self::create_in(h, limits).map(Some)
    }

    /// Makes the cgroup(s) for a container with `limits` in hierarchy `h`.
    fn create_in(h: &Hierarchy, limits: Limits) -> io::Result<Cgroup> {
        let name = format!(
            "woodpecker-sim-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mk = |dir: PathBuf| -> io::Result<PathBuf> {
            std::fs::create_dir(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
            Ok(dir)
        };
        let mut cg = Cgroup {
            dirs: Vec::new(),
            v2: matches!(h, Hierarchy::V2 { .. }),
        };
        match h {
            Hierarchy::V2 { parent } => {
                let dir = mk(parent.join(&name))?;
                cg.dirs.push(dir.clone());
                if let Some(b) = limits.memory_bytes {
                    write(dir.join("memory.max"), &b.to_string())?;
                    let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                }
                if let Some(m) = limits.cpu_millis {
                    // Best effort: cpu may not be delegated even where memory is.
                    let _ = std::fs::write(dir.join("cpu.max"), format!("{} 100000", m * 100));
                }
            }
            Hierarchy::V1 { memory, cpu } => {
                if let Some(b) = limits.memory_bytes {
                    let dir = mk(memory.join(&name))?;
                    cg.dirs.push(dir.clone());
                    write(dir.join("memory.limit_in_bytes"), &b.to_string())?;
                    // Absent without swap accounting; then there is no swap to hide in either.
                    let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), b.to_string());
                }
                if let (Some(m), Some(cpu)) = (limits.cpu_millis, cpu) {
                    let dir = mk(cpu.join(&name))?;
                    cg.dirs.push(dir.clone());
                    write(dir.join("cpu.cfs_period_us"), "100000")?;
                    write(dir.join("cpu.cfs_quota_us"), &(m * 100).to_string())?;
                }
            }
        }
        Ok(cg)
    }

    /// The `cgroup.procs` files the child writes its pid into before exec.
    pub fn procs_files(&self) -> Vec<CString> {
        self.dirs
            .iter()
            .filter_map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_encoded_bytes()).ok())
            .collect()
    }

    /// Whether the kernel OOM-killed a process of this cgroup (`killed_by_sigkill` helps kernels
    /// without the `oom_kill` counter).
    pub fn oom_killed(&self, killed_by_sigkill: bool) -> bool {
        let counter = |file: &str| -> Option<u64> {
            let text = std::fs::read_to_string(self.dirs.first()?.join(file)).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
        };
        if self.v2 {
            return counter("memory.events").is_some_and(|n| n > 0);
        }
        match counter("memory.oom_control") {
            Some(n) => n > 0,
            None => {
                killed_by_sigkill
                    && self
                        .dirs
                        .first()
                        .and_then(|d| std::fs::read_to_string(d.join("memory.failcnt")).ok())
                        .and_then(|t| t.trim().parse::<u64>().ok())
                        .is_some_and(|n| n > 0)
            }
        }
    }

    fn pids(dir: &Path) -> Vec<i32> {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills what is left in the cgroup and removes it (a dying process keeps it busy a moment).
    pub async fn remove(self) {
        for dir in &self.dirs {
            for attempt in 0..100 {
                for pid in Self::pids(dir) {
                    // SAFETY: a plain syscall; the pid is in our container's cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                match std::fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 99 => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Writes the calling process's pid into each file (between fork and exec: no allocation).
pub fn join_in_child(files: &[CString]) -> io::Result<()> {
    // SAFETY: getpid cannot fail.
    let mut n = unsafe { libc::getpid() } as u32;
    let mut buf = [0u8; 12];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for f in files {
        // SAFETY: open/write/close on a NUL-terminated path and a live stack buffer.
        unsafe {
            let fd = libc::open(f.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let r = libc::write(fd, buf[i..].as_ptr().cast(), buf.len() - i);
            libc::close(fd);
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_parse_quantities() {
        let c = json!({"resources": {"limits": {"memory": "32Mi", "cpu": "500m"}}});
        assert_eq!(
            Limits::of(&c),
            Limits {
                memory_bytes: Some(32 * 1024 * 1024),
                cpu_millis: Some(500)
            }
        );
        let c = json!({"resources": {"limits": {"memory": "1.5G", "cpu": 2}}});
        assert_eq!(
            Limits::of(&c),
            Limits {
                memory_bytes: Some(1_500_000_000),
                cpu_millis: Some(2000)
            }
        );
        assert!(!Limits::of(&json!({"resources": {"requests": {"memory": "1Gi"}}})).any());
        assert_eq!(quantity(&json!("1e3")), Some(1000.0));
        assert_eq!(quantity(&json!("12parsecs")), None);
    }

    /// A directory standing in for a cgroup file system (the kernel's files are plain files).
    fn fake_root(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("wp-cgroup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    fn put(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn view(mounts: String, cgroup: &str) -> ProcView {
        ProcView {
            mounts,
            cgroup: cgroup.into(),
        }
    }

    const LIMITS: Limits = Limits {
        memory_bytes: Some(32 * 1024 * 1024),
        cpu_millis: Some(500),
    };

    /// cgroup v2 as a systemd machine delegates it: the process sits in a leaf
    /// (`/system.slice/agent.service`) whose parent has memory in `cgroup.subtree_control`, so
    /// containers go beside it; limits are `memory.max` (no swap) and `cpu.max`, and an OOM kill
    /// is read from `memory.events`.
    #[test]
    fn cgroup_v2_detects_the_delegated_parent_writes_limits_and_reads_oom_kills() {
        let root = fake_root("v2");
        let slice = root.join("system.slice");
        let me = slice.join("agent.service");
        put(&me, "cgroup.controllers", "cpuset cpu io memory pids\n");
        put(&me, "cgroup.subtree_control", "");
        put(&slice, "cgroup.subtree_control", "cpu memory pids\n");
        let mounts = format!(
            "proc /proc proc rw 0 0\ncgroup2 {} cgroup2 rw,nosuid,nodev,noexec 0 0\n",
            root.display()
        );
        let h = detect_in(&view(mounts.clone(), "0::/system.slice/agent.service\n")).unwrap();
        let Hierarchy::V2 { parent } = &h else { panic!("{h:?}") };
        assert_eq!(parent, &slice);

        let cg = Cgroup::create_in(&h, LIMITS).unwrap();
        assert!(cg.v2);
        let dir = cg.dirs[0].clone();
        assert_eq!(dir.parent(), Some(slice.as_path()));
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), "33554432");
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("cpu.max"), "50000 100000");
        let procs = cg.procs_files();
        assert_eq!(procs.len(), 1);
        assert_eq!(procs[0].to_str().unwrap(), dir.join("cgroup.procs").to_str().unwrap());

        put(&dir, "memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 0\n");
        assert!(!cg.oom_killed(true), "no kill counted yet");
        put(
            &dir,
            "memory.events",
            "low 0\nhigh 0\nmax 40\noom 2\noom_kill 1\noom_group_kill 0\n",
        );
        assert!(cg.oom_killed(false));

        // Memory not delegated anywhere: refused with the reason, no v1 to fall back to.
        put(&slice, "cgroup.subtree_control", "cpu pids\n");
        let why = detect_in(&view(mounts.clone(), "0::/system.slice/agent.service\n")).unwrap_err();
        assert!(why.contains("not delegated"), "{why}");
        assert!(why.contains("cgroup v1: no memory hierarchy"), "{why}");
        // No memory controller at all.
        put(&me, "cgroup.controllers", "cpu pids\n");
        let why = detect_in(&view(mounts, "0::/system.slice/agent.service\n")).unwrap_err();
        assert!(why.contains("no memory controller"), "{why}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// cgroup v1 (these machines): memory and cpu hierarchies mounted apart; an OOM kill is
    /// `oom_kill` in `memory.oom_control`, or, on kernels without that counter, a SIGKILL with
    /// a failed charge (`memory.failcnt`).
    #[test]
    fn cgroup_v1_writes_limits_in_both_hierarchies_and_reads_oom_kills() {
        let root = fake_root("v1");
        let (mem, cpu) = (root.join("memory"), root.join("cpu"));
        std::fs::create_dir_all(mem.join("ci")).unwrap();
        std::fs::create_dir_all(cpu.join("ci")).unwrap();
        let mounts = format!(
            "cgroup {} cgroup rw,relatime,memory 0 0\ncgroup {} cgroup rw,relatime,cpu,cpuacct 0 0\n",
            mem.display(),
            cpu.display()
        );
        let h = detect_in(&view(mounts, "5:memory:/ci\n4:cpu,cpuacct:/ci\n0::/\n")).unwrap();
        let Hierarchy::V1 {
            memory,
            cpu: Some(cpu_dir),
        } = &h
        else {
            panic!("{h:?}")
        };
        assert_eq!((memory, cpu_dir), (&mem.join("ci"), &cpu.join("ci")));

        let cg = Cgroup::create_in(&h, LIMITS).unwrap();
        assert!(!cg.v2);
        assert_eq!(cg.dirs.len(), 2);
        let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read(&cg.dirs[0], "memory.limit_in_bytes"), "33554432");
        assert_eq!(read(&cg.dirs[1], "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&cg.dirs[1], "cpu.cfs_quota_us"), "50000");
        assert_eq!(cg.procs_files().len(), 2);

        assert!(!cg.oom_killed(true), "no counter, no failcnt: not an OOM kill");
        put(&cg.dirs[0], "memory.failcnt", "3\n");
        assert!(cg.oom_killed(true));
        assert!(!cg.oom_killed(false), "a failed charge without a SIGKILL is no kill");
        put(
            &cg.dirs[0],
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        );
        assert!(!cg.oom_killed(true), "the counter, where present, decides");
        put(
            &cg.dirs[0],
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        assert!(cg.oom_killed(false));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
