//! The host runner: a container's `command` + `args` run as a local process (stdout and stderr
//! captured line by line), with the container's env (literal values and secretKeyRefs), in a
//! private mount namespace whose root is a tmpfs holding bind mounts of the host's top-level
//! entries plus each PVC's host folder at its mountPath, so `cd /woodpecker/src` works without
//! touching the host's root. Images are not pulled. Deleting the pod sends SIGTERM to the process
//! group, then SIGKILL after the grace period.
//!
//! Memory and CPU limits are enforced with a cgroup per container where the machine allows it
//! (see `cgroup`); an OOM kill there ends the container as `OOMKilled`, exit 137.
//!
//! A container without a command (plugins, services relying on the image entrypoint) cannot run
//! here: a pod labelled `service` runs until deleted, anything else logs that the entrypoint was
//! not run and exits 0.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use super::cgroup::{self, Cgroup, Limits};
use super::{ContainerRun, Exit, Kill, killed};
use crate::storage;
use crate::store::Key;

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

/// The container's environment: literal values and secretKeyRefs (a missing secret leaves the
/// variable out; the kubelet reports CreateContainerConfigError before we get here).
fn env(run: &ContainerRun<'_>) -> Vec<(String, String)> {
    let ns = run.pod["metadata"]["namespace"].as_str().unwrap_or("");
    let mut out = Vec::new();
    for e in run.container["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else { continue };
        if let Some(v) = e["value"].as_str() {
            out.push((name.to_string(), v.to_string()));
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            let secret = run.shared.store.get(&Key::new(
                "secrets",
                ns,
                r.get("name").and_then(Value::as_str).unwrap_or(""),
            ));
            let key = r.get("key").and_then(Value::as_str).unwrap_or("");
            if let Some(b64) = secret.as_ref().and_then(|s| s["data"][key].as_str())
                && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64)
            {
                out.push((name.to_string(), String::from_utf8_lossy(&raw).into_owned()));
            }
        }
    }
    out
}

/// Mount plan: the new root and what to put in it, all as C strings made before fork.
struct Sandbox {
    root: CString,
    /// (path inside the new root, what it is on the host)
    entries: Vec<(CString, Entry)>,
    /// Directories to create inside the new root, parents first.
    mkdirs: Vec<CString>,
    /// (host source, target inside the new root)
    binds: Vec<(CString, CString)>,
    /// The working directory's components inside the new root, created after the binds (as
    /// container runtimes create a missing workingDir).
    workdirs: Vec<CString>,
    workdir: CString,
    /// Not root: a user namespace first, mapping us to root inside (uid_map, gid_map texts).
    userns: Option<(Vec<u8>, Vec<u8>)>,
    /// The container's cgroup(s): `cgroup.procs` files to join first thing.
    cgroup_procs: Vec<CString>,
}

enum Entry {
    Dir(CString),
    File(CString),
    Link(CString),
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn prefixes(root: &Path, target: &str, out: &mut Vec<CString>) {
    let mut cur = root.to_path_buf();
    for c in Path::new(target).components() {
        if let Component::Normal(n) = c {
            cur.push(n);
            let c = cstr(&cur);
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
}

fn sandbox(run: &ContainerRun<'_>, root: &Path) -> std::io::Result<Sandbox> {
    std::fs::create_dir_all(root)?;
    let mut entries = Vec::new();
    for e in std::fs::read_dir("/")? {
        let e = e?;
        let host = e.path();
        let inside = cstr(&root.join(e.file_name()));
        let ft = e.file_type()?;
        let entry = if ft.is_symlink() {
            Entry::Link(cstr(&std::fs::read_link(&host)?))
        } else if ft.is_dir() {
            Entry::Dir(cstr(&host))
        } else {
            Entry::File(cstr(&host))
        };
        entries.push((inside, entry));
    }
    let ns = run.pod["metadata"]["namespace"].as_str().unwrap_or("");
    let volumes = run.pod["spec"]["volumes"].as_array().cloned().unwrap_or_default();
    let (mut mkdirs, mut binds) = (Vec::new(), Vec::new());
    for m in run.container["volumeMounts"].as_array().into_iter().flatten() {
        let (Some(name), Some(path)) = (m["name"].as_str(), m["mountPath"].as_str()) else {
            continue;
        };
        let Some(vol) = volumes.iter().find(|v| v["name"] == name) else {
            continue;
        };
        let src: PathBuf = if let Some(claim) = vol["persistentVolumeClaim"]["claimName"].as_str() {
            storage::claim_dir(run.shared, ns, claim)
        } else if let Some(p) = vol["hostPath"]["path"].as_str() {
            PathBuf::from(p)
        } else {
            // emptyDir and others: a fresh folder per pod.
            let uid = run.pod["metadata"]["uid"].as_str().unwrap_or("pod");
            run.shared.dir.join("emptydirs").join(uid).join(name)
        };
        std::fs::create_dir_all(&src)?;
        if let Some(secret) = vol["secret"]["secretName"].as_str() {
            write_secret_files(run, ns, secret, &vol["secret"], &src)?;
        }
        prefixes(root, path, &mut mkdirs);
        binds.push((cstr(&src), cstr(&root.join(path.trim_start_matches('/')))));
    }
    let workdir = run.container["workingDir"].as_str().unwrap_or("/").to_string();
    let mut workdirs = Vec::new();
    prefixes(root, &workdir, &mut workdirs);
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let userns = (uid != 0).then(|| (format!("0 {uid} 1").into_bytes(), format!("0 {gid} 1").into_bytes()));
    Ok(Sandbox {
        cgroup_procs: Vec::new(),
        userns,
        root: cstr(root),
        workdirs,
        entries,
        mkdirs,
        binds,
        workdir: CString::new(workdir).unwrap_or_default(),
    })
}

/// Fills a secret volume's folder: one file per key (or per `items` entry), decoded.
fn write_secret_files(run: &ContainerRun<'_>, ns: &str, secret: &str, spec: &Value, dir: &Path) -> std::io::Result<()> {
    let Some(s) = run.shared.store.get(&Key::new("secrets", ns, secret)) else {
        return Ok(());
    };
    let items: Vec<(String, String)> = match spec["items"].as_array() {
        Some(items) => items
            .iter()
            .filter_map(|i| Some((i["key"].as_str()?.to_string(), i["path"].as_str()?.to_string())))
            .collect(),
        None => s["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| (k.clone(), k.clone()))
            .collect(),
    };
    for (key, rel) in items {
        let Some(raw) = s["data"][&key]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        else {
            continue;
        };
        // Keys and paths stay inside the volume.
        if Path::new(&rel).components().any(|c| !matches!(c, Component::Normal(_))) {
            continue;
        }
        let file = dir.join(&rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(file, raw)?;
    }
    Ok(())
}

/// The directories the child will create that land on the host's own folders (a mount point
/// under a host directory such as /run or /tmp): they do not exist yet and their top-level
/// component is a host directory bound into the new root.
fn host_side_mkdirs(sb: &Sandbox, root: &Path) -> Vec<PathBuf> {
    sb.mkdirs
        .iter()
        .chain(&sb.workdirs)
        .filter_map(|c| {
            let inside = Path::new(std::ffi::OsStr::from_bytes(c.as_bytes()));
            let rel = inside.strip_prefix(root).ok()?;
            let host = Path::new("/").join(rel);
            let top = rel.components().next()?;
            let on_host = rel.components().count() > 1 && Path::new("/").join(top).is_dir();
            (on_host && !host.exists()).then_some(host)
        })
        .collect()
}

/// Runs in the child between fork and exec: only syscalls on prepared data.
fn enter(sb: &Sandbox) -> std::io::Result<()> {
    use libc::{MS_BIND, MS_PRIVATE, MS_REC};
    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let null = std::ptr::null();
    let write = |path: &std::ffi::CStr, data: &[u8]| -> std::io::Result<()> {
        // SAFETY: plain syscalls on a NUL-terminated path and a live buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = libc::write(fd, data.as_ptr().cast(), data.len());
            libc::close(fd);
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // Into the container's cgroup before anything else (and before a user namespace, where
    // the cgroup files would no longer be ours).
    cgroup::join_in_child(&sb.cgroup_procs)?;
    // SAFETY: only async-signal-safe syscalls on data prepared before fork.
    unsafe {
        match &sb.userns {
            Some((uid_map, gid_map)) => {
                check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS))?;
                write(c"/proc/self/setgroups", b"deny")?;
                write(c"/proc/self/uid_map", uid_map)?;
                write(c"/proc/self/gid_map", gid_map)?;
            }
            None => check(libc::unshare(libc::CLONE_NEWNS))?,
        }
        check(libc::mount(
            null,
            c"/".as_ptr(),
            null,
            MS_REC | MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"tmpfs".as_ptr(),
            sb.root.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        ))?;
        for (inside, entry) in &sb.entries {
            match entry {
                Entry::Link(target) => check(libc::symlink(target.as_ptr(), inside.as_ptr()))?,
                Entry::Dir(host) => {
                    check(libc::mkdir(inside.as_ptr(), 0o755))?;
                    // Best effort: some entries (e.g. lost+found) may refuse.
                    libc::mount(host.as_ptr(), inside.as_ptr(), null, MS_BIND | MS_REC, std::ptr::null());
                }
                Entry::File(host) => {
                    let fd = libc::open(inside.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
                    if fd >= 0 {
                        libc::close(fd);
                        libc::mount(host.as_ptr(), inside.as_ptr(), null, MS_BIND, std::ptr::null());
                    }
                }
            }
        }
        for d in &sb.mkdirs {
            libc::mkdir(d.as_ptr(), 0o755);
        }
        for (src, target) in &sb.binds {
            check(libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                null,
                MS_BIND | MS_REC,
                std::ptr::null(),
            ))?;
        }
        for d in &sb.workdirs {
            libc::mkdir(d.as_ptr(), 0o755);
        }
        check(libc::chroot(sb.root.as_ptr()))?;
        if libc::chdir(sb.workdir.as_ptr()) != 0 {
            check(libc::chdir(c"/".as_ptr()))?;
        }
    }
    Ok(())
}

async fn pump(reader: impl AsyncRead + Unpin, log: std::sync::Arc<crate::logs::ContainerLog>) {
    let mut lines = BufReader::new(reader).split(b'\n');
    while let Ok(Some(mut line)) = lines.next_segment().await {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        log.push(line);
    }
}

pub(crate) async fn run(mut run: ContainerRun<'_>) -> Exit {
    let mut argv = strings(&run.container["command"]);
    argv.extend(strings(&run.container["args"]));
    if strings(&run.container["command"]).is_empty() {
        if run.plan.until_deleted {
            let _ = killed(&mut run.kill).await;
            return Exit::signal(15);
        }
        let image = run.container["image"].as_str().unwrap_or("");
        run.log.push(format!(
            "[sim] the entrypoint of image {image} was not run: the host runner runs only explicit commands"
        ));
        return Exit::code(0);
    }
    let uid = run.pod["metadata"]["uid"].as_str().unwrap_or("pod");
    let cname = run.container["name"].as_str().unwrap_or("c");
    let root = run.shared.dir.join("roots").join(format!("{uid}-{cname}"));
    let mut sb = match sandbox(&run, &root) {
        Ok(sb) => sb,
        Err(e) => {
            return Exit {
                code: 128,
                reason: "StartError".into(),
                message: Some(format!("prepare the mount namespace: {e}")),
                signal: None,
            };
        }
    };
    let cg = match Cgroup::create(Limits::of(run.container)) {
        Ok(cg) => cg,
        Err(e) => {
            let _ = std::fs::remove_dir(&root);
            return Exit {
                code: 128,
                reason: "StartError".into(),
                message: Some(format!("create the container's cgroup: {e}")),
                signal: None,
            };
        }
    };
    sb.cgroup_procs = cg.as_ref().map(Cgroup::procs_files).unwrap_or_default();
    let leftovers = host_side_mkdirs(&sb, &root);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for k in ["PATH", "HOME", "LANG", "TERM"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("HOSTNAME", run.pod["metadata"]["name"].as_str().unwrap_or(""));
    cmd.envs(env(&run));
    cmd.process_group(0);
    unsafe {
        cmd.pre_exec(move || enter(&sb));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            if let Some(cg) = cg {
                cg.remove().await;
            }
            let msg = format!("failed to start container process {:?}: {e}", argv[0]);
            run.log.push(msg.clone());
            return Exit {
                code: 128,
                reason: "StartError".into(),
                message: Some(msg),
                signal: None,
            };
        }
    };
    let pid = child.id().map(|p| p as i32);
    let out = child.stdout.take().map(|o| tokio::spawn(pump(o, run.log.clone())));
    let err = child.stderr.take().map(|e| tokio::spawn(pump(e, run.log.clone())));
    let status = tokio::select! {
        s = child.wait() => s,
        k = killed(&mut run.kill) => {
            let grace = match k { Kill::Deleted { grace } => grace, _ => std::time::Duration::ZERO };
            if let Some(pid) = pid {
                unsafe { libc::kill(-pid, libc::SIGTERM) };
            }
            match tokio::time::timeout(grace, child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    if let Some(pid) = pid {
                        unsafe { libc::kill(-pid, libc::SIGKILL) };
                    }
                    child.wait().await
                }
            }
        }
    };
    for t in [out, err].into_iter().flatten() {
        let _ = t.await;
    }
    // Mount points the child had to create inside host folders (e.g. /run/x) go again.
    for dir in leftovers.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
    let _ = std::fs::remove_dir(&root);
    use std::os::unix::process::ExitStatusExt;
    // As the runtime reports it: a container whose cgroup saw an OOM kill and failed was
    // OOMKilled (its main process, or a child it then died of).
    let oom = match (&cg, &status) {
        (Some(cg), Ok(s)) if !s.success() => cg.oom_killed(s.signal() == Some(libc::SIGKILL)),
        _ => false,
    };
    if let Some(cg) = cg {
        cg.remove().await;
    }
    match status {
        Ok(s) if oom => Exit {
            code: s.code().unwrap_or(128 + s.signal().unwrap_or(libc::SIGKILL)),
            reason: "OOMKilled".into(),
            message: None,
            signal: s.signal(),
        },
        Ok(s) => match (s.code(), s.signal()) {
            (Some(c), _) => Exit::code(c),
            (None, Some(sig)) => Exit::signal(sig),
            _ => Exit::code(1),
        },
        Err(e) => Exit {
            code: 128,
            reason: "StartError".into(),
            message: Some(format!("wait for the process: {e}")),
            signal: None,
        },
    }
}
