//! cgroup v2 for real: the build machines keep the memory controller in a cgroup v1 hierarchy of
//! their own, so `tests/sim/limits.rs` proves the v1 path on the kernel and `cgroup.rs`'s unit
//! tests the v2 path on a stand-in file tree. Here a small VM (QEMU, a Debian cloud kernel, a
//! busybox initramfs: `scripts/vm-kernel.sh` fetches them) mounts cgroup v2 alone, puts the
//! agent in a leaf cgroup as systemd would, and runs `exec --embedded`: a step sees its own
//! cgroup's `cpu.max` and `memory.max`, and a step limited to 32Mi that allocates 500 MB is
//! killed by the kernel's memory controller and fails `137`, `OOM killed`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// What the VM runs as PID 1: cgroup v2 with memory and cpu delegated to the root's children,
/// the agent in `/agent` (a leaf, so containers go beside it), then `exec --embedded`.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
ip link set lo up
mount -t cgroup2 none /sys/fs/cgroup
echo "+memory +cpu" > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/agent
echo $$ > /sys/fs/cgroup/agent/cgroup.procs
echo "MOUNTS: $(grep cgroup /proc/mounts)"
echo "DELEGATED: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
cd /work
NO_COLOR=1 HOME=/root /bin/agent exec --embedded /work/.woodpecker.yaml
echo "EXIT=$?"
poweroff -f
"#;

/// First a step that prints its own cgroup's limits, then the hog. Busybox's `head` takes
/// bytes, not `500M`; `tail` keeps a newline-free input whole.
const PIPELINE: &str = r#"steps:
  quota:
    image: alpine
    commands:
      - |
        cg=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)
        echo "LIMITS $cg cpu.max $(cat $cg/cpu.max) memory.max $(cat $cg/memory.max)"
    backend_options:
      kubernetes:
        resources:
          limits:
            cpu: 250m
            memory: 64Mi
  hog:
    image: alpine
    commands: ["head -c 524288000 /dev/zero | tail > /dev/null"]
    backend_options:
      kubernetes:
        resources:
          limits:
            memory: 32Mi
"#;

fn need(what: &str, found: Option<PathBuf>) -> PathBuf {
    found.unwrap_or_else(|| {
        panic!("{what} is missing: run `bash scripts/vm-kernel.sh` (scripts/test.sh does), which installs QEMU and busybox-static with apt-get and unpacks a Debian cloud kernel into target/vm-kernel/")
    })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn kernel() -> Option<PathBuf> {
    let boot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vm-kernel/boot");
    std::fs::read_dir(boot)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
}

/// A `newc` cpio archive of `root` (what the kernel unpacks as its initramfs).
fn cpio(root: &Path) -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            out.push(p.clone());
            if p.is_dir() {
                walk(&p, out);
            }
        }
    }
    fn entry(out: &mut Vec<u8>, ino: usize, name: &str, mode: u32, data: &[u8]) {
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
        out.extend_from_slice(data);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let mut paths = Vec::new();
    walk(root, &mut paths);
    let mut out = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(p).unwrap();
        let perm = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            entry(&mut out, i + 1, &name, 0o040000 | perm, &[]);
        } else {
            entry(&mut out, i + 1, &name, 0o100000 | perm, &std::fs::read(p).unwrap());
        }
    }
    entry(&mut out, 0, "TRAILER!!!", 0, &[]);
    out
}

/// The shared libraries `ldd` says the binary loads, with their paths.
fn libraries(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().expect("ldd (libc-bin) runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

/// The root file system: busybox, the agent (stripped) and its libraries, the pipeline.
fn root_fs(dir: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "work", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let busybox = need("a static busybox", on_path("busybox"));
    std::fs::copy(&busybox, dir.join("bin/busybox")).unwrap();
    let agent = Path::new(env!("CARGO_BIN_EXE_woodpecker-k8s-agent"));
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(dir.join("bin/agent"))
        .arg(agent)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(agent, dir.join("bin/agent")).unwrap();
    }
    for lib in libraries(agent) {
        let to = dir.join(lib.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&lib, &to).unwrap();
    }
    std::fs::write(dir.join("init"), INIT).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("init"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("work/.woodpecker.yaml"), PIPELINE).unwrap();
}

#[test]
fn exec_embedded_fails_a_step_over_its_memory_limit_on_cgroup_v2() {
    let qemu = need("qemu-system-x86_64", on_path("qemu-system-x86_64"));
    let kernel = need("a kernel in target/vm-kernel", kernel());
    let dir = std::env::temp_dir().join(format!("wp-cgroup2-vm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    root_fs(&dir.join("root"));
    std::fs::write(dir.join("initramfs.cpio"), cpio(&dir.join("root"))).unwrap();

    // Emulated (TCG): nested KVM is not dependable on the build machines. About 10 s here.
    let mut child = Command::new(&qemu)
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "1"])
        .args(["-nographic", "-no-reboot", "-kernel"])
        .arg(&kernel)
        .arg("-initrd")
        .arg(dir.join("initramfs.cpio"))
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.join("console.log")).unwrap())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start qemu");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
            panic!("the VM did not power off within 300 s:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(dir.join("console.log")).unwrap();
    assert!(status.success(), "qemu: {status}\n{log}");
    // Only cgroup v2 is mounted, with memory delegated.
    // (The console's first line starts with the firmware's escape codes.)
    let mounts = log
        .lines()
        .find_map(|l| l.split_once("MOUNTS: ").map(|(_, m)| m))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(mounts.contains(" cgroup2 ") && !mounts.contains(" cgroup "), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("DELEGATED: ") && l.contains("memory")),
        "{log}"
    );
    // A limited container runs in a cgroup of its own beside the agent's, with both limits.
    let limits = log
        .lines()
        .find_map(|l| l.strip_prefix("[quota] LIMITS "))
        .unwrap_or_else(|| panic!("no limits printed:\n{log}"));
    let (cgroup, values) = limits.split_once(' ').unwrap();
    assert!(cgroup.starts_with("/sys/fs/cgroup/woodpecker-sim-"), "{log}");
    assert_eq!(values, "cpu.max 25000 100000 memory.max 67108864", "{log}");
    // The kernel's memory controller killed the hog, and the step says so.
    assert!(log.contains("Memory cgroup out of memory"), "no memcg OOM kill:\n{log}");
    assert!(!log.contains("cannot enforce container limits"), "{log}");
    let rows: Vec<Vec<&str>> = log.lines().map(|l| l.split_whitespace().collect()).collect();
    let at = rows
        .iter()
        .rposition(|r| r.first() == Some(&"hog"))
        .unwrap_or_else(|| panic!("no summary row for hog:\n{log}"));
    assert_eq!(&rows[at][1..3], ["failure", "137"], "{log}");
    assert_eq!(rows[at + 1].join(" "), "error: OOM killed", "{log}");
    assert!(log.contains("EXIT=1"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
