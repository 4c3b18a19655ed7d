//! `exec` end to end through the binary: `--dry-run` over every pipeline in
//! `testdata/pipelines/` (compiled JSON, masking, matrix, events), workflow discovery and
//! `depends_on` order, and errors with their exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use woodpecker_k8s_agent::backend::WorkflowConfig;

const BIN: &str = env!("CARGO_BIN_EXE_woodpecker-k8s-agent");

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/pipelines")
        .join(name)
}

fn exec(args: &[&str], dir: &Path) -> Output {
    Command::new(BIN)
        .arg("exec")
        .args(args)
        .current_dir(dir)
        .env_remove("npm_token")
        .output()
        .expect("run the binary")
}

/// Runs `exec --dry-run` and decodes the JSON documents it prints.
fn dry_run(args: &[&str]) -> (Vec<WorkflowConfig>, String) {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = exec(&all, Path::new(env!("CARGO_MANIFEST_DIR")));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exec {all:?} failed: {stderr}");
    let configs = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<WorkflowConfig>()
        .collect::<Result<Vec<_>, _>>()
        .expect("stdout is backend JSON");
    (configs, stderr)
}

fn shape(c: &WorkflowConfig) -> Vec<Vec<&str>> {
    c.stages
        .iter()
        .map(|s| s.steps.iter().map(|s| s.name.as_str()).collect())
        .collect()
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wp-exec-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn dry_run_compiles_the_quickstart() {
    let (configs, stderr) = dry_run(&["testdata/pipelines/quickstart.yaml", "--branch", "main"]);
    assert_eq!(configs.len(), 1);
    assert!(stderr.contains("# quickstart"), "{stderr}");
    let c = &configs[0];
    assert_eq!(
        shape(c),
        vec![
            vec!["cache"],
            vec!["prepare"],
            vec!["count", "search", "flaky"],
            vec!["report"]
        ]
    );
    let flaky = &c.stages[2].steps[2];
    assert_eq!(flaky.failure, "ignore");
    assert!(c.stages[0].steps[0].detached);
    assert_eq!(
        c.stages[1].steps[0].commands[0],
        "echo \"building $CI_REPO at main in $PWD\""
    );
}

#[test]
fn dry_run_compiles_every_testdata_pipeline() {
    let mut names: Vec<String> = std::fs::read_dir(testdata(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let path = format!("testdata/pipelines/{name}");
        let (configs, _) = dry_run(&[
            &path,
            "--secret",
            "db_password=pg-pass-123",
            "--secret",
            "npm_token=npm-tok-456",
        ]);
        assert!(!configs.is_empty(), "{name} compiled to nothing");
        for c in &configs {
            assert!(c.stages.iter().all(|s| !s.steps.is_empty()), "{name}: empty stage");
        }
    }
}

#[test]
fn dry_run_masks_secrets() {
    let (configs, _) = dry_run(&[
        "testdata/pipelines/services.yaml",
        "--secret",
        "db_password=pg-pass-123",
    ]);
    let json = serde_json::to_string(&configs).unwrap();
    assert!(!json.contains("pg-pass-123"), "{json}");
    let db = &configs[0].stages[0].steps[0];
    assert_eq!((db.name.as_str(), db.type_.as_str()), ("database", "service"));
    assert_eq!(db.environment["POSTGRES_PASSWORD"], "********");
    assert_eq!(db.secret_mapping["POSTGRES_PASSWORD"], "********");
    assert_eq!(configs[0].secrets[0].value, "********");
    // No depends_on: one stage per step, services first, the failure handler last.
    assert_eq!(shape(&configs[0])[0], ["database", "redis"]);
    assert!(configs[0].stages.last().unwrap().steps[0].on_failure);
}

#[test]
fn matrix_gives_one_workflow_per_item() {
    let (configs, stderr) = dry_run(&["testdata/pipelines/matrix.yaml"]);
    assert_eq!(configs.len(), 2);
    assert!(stderr.contains("# matrix (ARCH=amd64, NAME=runner1)"), "{stderr}");
    let arches: Vec<_> = configs
        .iter()
        .map(|c| c.stages[0].steps[0].backend_options["kubernetes"]["nodeSelector"]["kubernetes.io/arch"].clone())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    assert_eq!(
        configs[1].stages[0].steps[0].commands[0],
        "echo \"building on runner2 for arm64\""
    );
}

#[test]
fn event_flag_selects_steps_and_secrets_come_from_the_environment() {
    let (configs, _) = dry_run(&["testdata/pipelines/node.yaml"]);
    assert_eq!(shape(&configs[0]), vec![vec!["install"], vec!["lint", "test"]]);
    let out = Command::new(BIN)
        .args(["exec", "--dry-run", "--event", "tag", "testdata/pipelines/node.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("npm_token", "from-env-789")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: WorkflowConfig = serde_json::from_slice(&out.stdout).unwrap();
    let publish = &c.stages[2].steps[0];
    assert_eq!((publish.name.as_str(), publish.type_.as_str()), ("publish", "plugin"));
    assert_eq!(publish.environment["PLUGIN_TOKEN"], "********");
    assert_eq!(publish.environment["PLUGIN_USERNAME"], "ci-bot");
}

#[test]
fn missing_secret_fails_with_its_place() {
    let out = exec(
        &["--dry-run", "--event", "tag", "testdata/pipelines/node.yaml"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: testdata/pipelines/node.yaml:30: steps.publish.settings.token: secret `npm_token` is not set (pass --secret npm_token=VALUE or set $npm_token in the environment)"
    );
}

#[test]
fn a_folder_runs_in_depends_on_order() {
    let dir = tempdir("order");
    let wp = dir.join(".woodpecker");
    std::fs::create_dir_all(&wp).unwrap();
    std::fs::write(
        wp.join("a-deploy.yaml"),
        "depends_on: [build]\nskip_clone: true\nsteps:\n  ship: {image: x, commands: [echo ship]}\n",
    )
    .unwrap();
    std::fs::write(
        wp.join("build.yml"),
        "skip_clone: true\nsteps:\n  make: {image: x, commands: [echo make]}\n",
    )
    .unwrap();
    std::fs::write(wp.join("notes.txt"), "not a workflow").unwrap();
    let out = exec(&["--dry-run"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // File order, as Woodpecker numbers them; each says what it waits for.
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        ["# a-deploy (after build)", "# build"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_pipeline_is_an_error_and_unknown_keys_a_warning() {
    let dir = tempdir("empty");
    let out = exec(&["--dry-run"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no pipeline found in"),
        "{out:?}"
    );
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "steps:\n  a:\n    image: x\n    shm_size: 1g\n  b:\n    image: [x]\n",
    )
    .unwrap();
    let out = exec(&["--dry-run"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr, "error: .woodpecker.yaml:6: steps.b.image: expected a string\n");
    // A key Woodpecker ignores is a warning, once, and the run goes on.
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "steps:\n  a:\n    image: x\n    shm_size: 1g\n",
    )
    .unwrap();
    let out = exec(&["--dry-run"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        "warning: .woodpecker.yaml:4: steps.a.shm_size: `shm_size` is not a key of a step of `steps`; ignored\n# woodpecker\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `exec --embedded` (the simulated cluster, host runner) and returns the output.
fn embedded(args: &[&str], dir: &Path) -> (Option<i32>, String) {
    crate::common::exec_embedded(args, dir)
}

/// The summary rows: step -> (result, exit).
fn summary(text: &str) -> Vec<(String, String)> {
    let table = text.rsplit_once("\nSTEP ").map(|(_, t)| t).unwrap_or("");
    table
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .map(|l| {
            let cols: Vec<&str> = l.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
            (cols[0].to_string(), cols[1..cols.len() - 2].join(" "))
        })
        .collect()
}

#[test]
fn embedded_quickstart_runs_for_real() {
    let (code, text) = embedded(
        &["testdata/pipelines/quickstart.yaml"],
        Path::new(env!("CARGO_MANIFEST_DIR")),
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("[cache] cache service is up"), "{text}");
    assert!(text.contains("[count] 3\n"), "{text}");
    assert!(text.contains("[search] 2:beta\n"), "{text}");
    assert!(
        text.contains("[report] step report of workflow quickstart, pipeline status success"),
        "{text}"
    );
    let rows = summary(&text);
    let want: Vec<(String, String)> = [
        ("cache", "success"),
        ("prepare", "success"),
        ("count", "success"),
        ("search", "success"),
        ("flaky", "failure (ignored)"),
        ("report", "success"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(rows, want, "{text}");
    assert!(text.contains("flaky    failure (ignored)     3"), "{text}");
}

#[test]
fn embedded_runs_every_testdata_pipeline() {
    for name in [
        "go.yaml",
        "rust.yaml",
        "node.yaml",
        "services.yaml",
        "matrix.yaml",
        "detach.yaml",
    ] {
        let path = format!("testdata/pipelines/{name}");
        let (code, text) = embedded(
            &[&path, "--secret", "db_password=pg-pass-123"],
            Path::new(env!("CARGO_MANIFEST_DIR")),
        );
        assert_eq!(code, Some(0), "{name}:\n{text}");
        let rows = summary(&text);
        assert!(!rows.is_empty(), "{name}: no summary\n{text}");
        for (step, result) in rows {
            assert!(
                result == "success" || result == "skipped",
                "{name}: {step} is {result}\n{text}"
            );
        }
        assert!(!text.contains("pg-pass-123"), "{name}: a secret was printed");
    }
}

#[test]
fn embedded_failure_masking_and_exit_code() {
    let dir = tempdir("fail");
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "steps:\n  show:\n    image: x\n    environment:\n      TOKEN: {from_secret: token}\n    commands: [echo \"token is $TOKEN\"]\n  broken:\n    image: x\n    commands: [echo about to fail, exit 4]\n  after:\n    image: x\n    commands: [echo never]\n  cleanup:\n    image: x\n    when: {status: [failure]}\n    commands: [echo cleaning up]\n",
    )
    .unwrap();
    let (code, text) = embedded(&["--secret", "token=sup3r-s3cret"], &dir);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("[show] token is ********"), "{text}");
    assert!(!text.contains("sup3r-s3cret"), "{text}");
    assert!(text.contains("[cleanup] cleaning up"), "{text}");
    let rows = summary(&text);
    let results: Vec<&str> = rows.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(results, ["success", "failure", "skipped", "success"], "{text}");
    assert!(text.contains("broken   failure               4"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether any process runs exactly `cmdline` (space-separated).
fn running(cmdline: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()).any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline)
            .unwrap_or(false)
    })
}

#[test]
fn embedded_sigterm_cancels_and_stops_every_step() {
    use std::io::{BufRead, BufReader};
    let dir = tempdir("cancel");
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "services:\n  svc:\n    image: x\n    commands: [sleep 9871]\nsteps:\n  long:\n    image: x\n    commands: [echo started, sleep 9872]\n  next:\n    image: x\n    commands: [echo never]\n",
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["exec", "--embedded"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line == "[long] started" {
            break;
        }
    }
    assert!(seen.contains("[long] started"), "{seen}");
    // The step's process runs on this host now (the shell starts `sleep` right after the
    // echo, so give it a moment to appear).
    let appear = std::time::Instant::now();
    while !running("sleep 9872") && appear.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(running("sleep 9872"), "the step's process is not running");
    let started = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let text = format!("{seen}{}", rest.join("\n"));
    assert!(started.elapsed().as_secs() < 30, "cancel took {:?}", started.elapsed());
    assert_eq!(status.code(), Some(1), "{text}");
    let rows = summary(&text);
    assert_eq!(
        rows.iter().find(|(s, _)| s == "long").map(|(_, r)| r.as_str()),
        Some("canceled"),
        "{text}"
    );
    assert_eq!(
        rows.iter().find(|(s, _)| s == "next").map(|(_, r)| r.as_str()),
        Some("not run"),
        "{text}"
    );
    assert!(
        !running("sleep 9871") && !running("sleep 9872"),
        "a step's process outlived exec"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C twice against a cluster that went away: the first signal starts the clean-up, which
/// waits for the apiserver; the second exits at once (130), saying what is left and who reaps it.
#[test]
fn a_second_signal_exits_while_the_clean_up_waits_for_a_gone_cluster() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let dir = tempdir("second-signal");
    let mut sim = Command::new(BIN)
        .args(["sim", "--runner", "host", "--dir"])
        .arg(dir.join("sim"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let kubeconfig = BufReader::new(sim.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "skip_clone: true\nsteps:\n  long:\n    image: x\n    commands: [echo started, sleep 9874]\n",
    )
    .unwrap();
    let mut exec = Command::new(BIN)
        .args(["exec", "--kubeconfig", &kubeconfig])
        .env("WOODPECKER_BACKEND_K8S_STORAGE_RWX", "false")
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(exec.stdout.take().unwrap()).lines();
    assert!(
        lines.by_ref().map_while(Result::ok).any(|l| l == "[long] started"),
        "the step never started"
    );
    // The cluster goes away (the sim ends its step's process as it stops).
    unsafe { libc::kill(sim.id() as i32, libc::SIGTERM) };
    sim.wait().unwrap();
    unsafe { libc::kill(exec.id() as i32, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        exec.try_wait().unwrap().is_none(),
        "exec ended without its clean-up: the test no longer shows the second signal"
    );
    let sent = Instant::now();
    unsafe { libc::kill(exec.id() as i32, libc::SIGTERM) };
    let status = loop {
        if let Some(status) = exec.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = exec.kill();
            panic!("exec did not exit within 5 s of the second signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut exec.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("again to exit at once"), "{err}");
    assert!(
        err.contains(
            "exiting without the clean-up: a later `exec` or agent in this namespace removes what this run created"
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn embedded_workspace_starts_with_the_tracked_files() {
    let dir = tempdir("seed");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("git is needed for this test: apt-get install git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    git(&["init", "-q"]);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.txt"), "tracked content\n").unwrap();
    std::fs::write(dir.join("untracked.txt"), "not copied\n").unwrap();
    git(&["add", "src/main.txt"]);
    git(&["commit", "-qm", "init"]);
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "steps:\n  look:\n    image: x\n    commands: [cat src/main.txt, test ! -e untracked.txt]\n",
    )
    .unwrap();
    let (code, text) = embedded(&[], &dir);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("workspace: 1 tracked files of"), "{text}");
    assert!(text.contains("[look] tracked content"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn repo_cron_deploy_target_and_instance_filters_follow_the_flags() {
    let steps = |args: &[&str]| -> Vec<String> {
        let mut all = vec![
            "testdata/pipelines/filters.yaml",
            "--repo-url",
            "https://github.com/acme/app.git",
        ];
        all.extend_from_slice(args);
        let (configs, _) = dry_run(&all);
        let names = configs[0].stages.iter().flat_map(|s| &s.steps).map(|s| s.name.clone());
        names.filter(|n| n != "clone").collect()
    };
    assert_eq!(
        steps(&["--event", "cron", "--cron", "nightly"]),
        ["always", "nightly", "upstream-only"]
    );
    assert_eq!(
        steps(&["--event", "cron", "--cron", "weekly"]),
        ["always", "upstream-only"]
    );
    assert_eq!(
        steps(&["--event", "deployment", "--deploy-to", "production"]),
        ["always", "deploy-prod", "upstream-only"]
    );
    assert_eq!(
        steps(&["--event", "deployment", "--deploy-to", "staging"]),
        ["always", "upstream-only"]
    );
    let (configs, _) = dry_run(&[
        "testdata/pipelines/filters.yaml",
        "--repo-url",
        "https://codeberg.org/mirror/app.git",
    ]);
    let names: Vec<&str> = configs[0]
        .stages
        .iter()
        .flat_map(|s| &s.steps)
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        names.contains(&"mirrors-only") && !names.contains(&"upstream-only"),
        "{names:?}"
    );
}

/// A run of `exec --embedded --event push` over `files` (name, text) in `.woodpecker/`, with
/// the `--report` JSON it wrote.
fn scenario(name: &str, files: &[(&str, &str)], extra: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let dir = tempdir(&format!("scn-{name}"));
    let wp = dir.join(".woodpecker");
    std::fs::create_dir_all(&wp).unwrap();
    for (file, text) in files {
        std::fs::write(wp.join(file), text).unwrap();
    }
    let report = dir.join("report.json");
    let report_arg = report.display().to_string();
    let mut args = vec!["--event", "push", "--report", report_arg.as_str()];
    args.extend_from_slice(extra);
    let (code, text) = embedded(&args, &dir);
    let json = std::fs::read_to_string(&report)
        .map(|t| serde_json::from_str(&t).expect("the report is JSON"))
        .unwrap_or(serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    (code, text, json)
}

/// (step, status, exit code) rows.
type StepRows = Vec<(String, String, i64)>;

/// (workflow, status) and (step, status, exit code) from a report.
fn statuses(report: &serde_json::Value) -> (Vec<(String, String)>, StepRows) {
    let mut flows = Vec::new();
    let mut steps = Vec::new();
    for w in report["workflows"].as_array().into_iter().flatten() {
        flows.push((
            w["name"].as_str().unwrap().to_owned(),
            w["status"].as_str().unwrap().to_owned(),
        ));
        for s in w["steps"].as_array().into_iter().flatten() {
            steps.push((
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
                s["exit_code"].as_i64().unwrap(),
            ));
        }
    }
    (flows, steps)
}

fn owned<const N: usize>(list: [(&str, &str, i64); N]) -> StepRows {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect()
}

/// Woodpecker's own end-to-end scenarios (`e2e/scenarios/fixtures`, 17 pipelines with the
/// status of every workflow and step) as a spec: the same behaviours, our own pipelines, run
/// for real on the embedded cluster, read back from `--report`.
#[test]
fn woodpecker_e2e_scenarios_single_workflow() {
    let step = |name: &str, cmd: &str, extra: &str| {
        format!("  - name: {name}\n    image: alpine\n    commands: [\"{cmd}\"]\n{extra}")
    };
    let cases: Vec<(&str, String, Option<i32>, StepRows)> = vec![
        (
            "simple-success",
            format!(
                "steps:\n{}{}",
                step("build", "echo building", ""),
                step("test", "echo testing", "")
            ),
            Some(0),
            owned([("build", "success", 0), ("test", "success", 0)]),
        ),
        (
            "step-failure-stops",
            format!(
                "steps:\n{}{}",
                step("build", "exit 1", ""),
                step("deploy", "echo deploying", "")
            ),
            Some(1),
            owned([("build", "failure", 1), ("deploy", "skipped", 0)]),
        ),
        (
            "failure-ignore",
            format!(
                "steps:\n{}{}",
                step("lint", "exit 1", "    failure: ignore\n"),
                step("build", "echo ok", "")
            ),
            Some(0),
            owned([("lint", "failure", 1), ("build", "success", 0)]),
        ),
        (
            "on-failure-notify",
            format!(
                "steps:\n{}{}",
                step("build", "exit 2", ""),
                step("notify", "echo notifying", "    when:\n      - status: [failure]\n")
            ),
            Some(1),
            owned([("build", "failure", 2), ("notify", "success", 0)]),
        ),
        (
            "service",
            format!(
                "steps:\n{}services:\n  - name: db\n    image: alpine\n    commands: [\"sleep 30\"]\n",
                step("test", "echo running tests", "")
            ),
            Some(0),
            owned([("db", "success", 0), ("test", "success", 0)]),
        ),
        (
            "parallel-steps",
            format!(
                "steps:\n{}{}{}",
                step("test-unit", "echo unit", "    depends_on: []\n"),
                step("test-integration", "echo integration", "    depends_on: []\n"),
                step(
                    "deploy",
                    "echo deploy",
                    "    depends_on: [test-unit, test-integration]\n"
                )
            ),
            Some(0),
            owned([
                ("test-unit", "success", 0),
                ("test-integration", "success", 0),
                ("deploy", "success", 0),
            ]),
        ),
        (
            // Woodpecker's fixture is an OOM kill (137); the host runner has no memory limit,
            // so the step exits 137 itself.
            "killed-137",
            format!("steps:\n{}", step("hungry", "exit 137", "")),
            Some(1),
            owned([("hungry", "failure", 137)]),
        ),
        (
            "always-run-on-failure",
            format!(
                "steps:\n{}{}{}",
                step("build", "exit 1", ""),
                step(
                    "always-cleanup",
                    "echo cleaning",
                    "    when:\n      - status: [success, failure]\n"
                ),
                step("deploy", "echo deploying", "")
            ),
            Some(1),
            owned([
                ("build", "failure", 1),
                ("always-cleanup", "success", 0),
                ("deploy", "skipped", 0),
            ]),
        ),
        (
            "step-optional-depends-on",
            format!(
                "when:\n  event: push\nsteps:\n{}{}{}",
                step("build", "echo building", ""),
                step("lint", "echo linting", "    when:\n      event: tag\n"),
                step(
                    "deploy",
                    "echo deploying",
                    "    depends_on:\n      - build\n      - name: lint\n        optional: true\n"
                )
            ),
            Some(0),
            owned([("build", "success", 0), ("deploy", "success", 0)]),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, text, code, want) in cases {
        let (got_code, out, report) = scenario(name, &[("ci.yaml", &text)], &[]);
        let (_, steps) = statuses(&report);
        if got_code != code || steps != want {
            wrong.push(format!(
                "{name}: exit {got_code:?} (want {code:?})\n  got  {steps:?}\n  want {want:?}\n{out}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn woodpecker_e2e_scenarios_several_workflows() {
    let wf = |deps: &str, name: &str, cmd: &str| {
        format!("{deps}steps:\n  - name: {name}\n    image: alpine\n    commands: [\"{cmd}\"]\n")
    };
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Option<i32>, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "one-fails",
            vec![
                ("failing.yaml", wf("", "bad-step", "exit 1")),
                ("passing.yaml", wf("", "ok-step", "echo fine")),
            ],
            Some(1),
            vec![("failing", "failure"), ("passing", "success")],
        ),
        (
            // A `when` entry that is no condition (`failure: ignore`) is only a warning: the
            // step runs and fails.
            "flaky-when-failure-key",
            vec![
                (
                    "flaky.yaml",
                    wf("", "flaky", "exit 1")
                        .replace("    commands", "    when:\n      - failure: ignore\n    commands"),
                ),
                ("main.yaml", wf("", "build", "echo building")),
            ],
            Some(1),
            vec![("flaky", "failure"), ("main", "success")],
        ),
        (
            "chain",
            vec![
                ("build.yaml", wf("", "compile", "echo compiling")),
                ("deploy.yaml", wf("depends_on: [build]\n", "deploy", "echo deploying")),
                (
                    "notify.yaml",
                    wf("depends_on:\n  - deploy\n", "notify", "echo notifying"),
                ),
            ],
            Some(0),
            vec![("build", "success"), ("deploy", "success"), ("notify", "success")],
        ),
        (
            "dependency-fails",
            vec![
                ("build.yaml", wf("", "compile", "exit 1")),
                ("deploy.yaml", wf("depends_on: [build]\n", "deploy", "echo never")),
            ],
            Some(1),
            vec![("build", "failure"), ("deploy", "skipped")],
        ),
        (
            "optional-workflow-dependency",
            vec![
                ("check-a.yaml", wf("", "check-a", "echo a")),
                ("check-b.yaml", wf("when:\n  event: tag\n", "check-b", "echo b")),
                (
                    "deploy.yaml",
                    wf(
                        "depends_on:\n  - check-a\n  - name: check-b\n    optional: true\n",
                        "deploy",
                        "echo deploying",
                    ),
                ),
            ],
            Some(0),
            vec![("check-a", "success"), ("deploy", "success")],
        ),
        (
            "missing-required-workflow-dependency",
            vec![
                ("check-a.yaml", wf("", "check-a", "echo a")),
                (
                    "deploy.yaml",
                    wf("depends_on: [check-a, ghost-workflow]\n", "deploy", "echo deploying"),
                ),
            ],
            Some(0),
            vec![("check-a", "success")],
        ),
        (
            // A required dependency that its `when:` filters out drops the dependant too.
            "filtered-required-workflow-dependency",
            vec![
                ("check-b.yaml", wf("when:\n  event: tag\n", "check-b", "echo b")),
                ("deploy.yaml", wf("depends_on: [check-b]\n", "deploy", "echo deploying")),
                ("lint.yaml", wf("", "lint", "echo lint")),
            ],
            Some(0),
            vec![("lint", "success")],
        ),
        (
            // runs_on: [failure] runs after a failed dependency, and only then.
            "runs-on-failure",
            vec![
                ("build.yaml", wf("", "compile", "exit 3")),
                (
                    "report.yaml",
                    wf("depends_on: [build]\nruns_on: [failure]\n", "report", "echo report"),
                ),
            ],
            Some(1),
            vec![("build", "failure"), ("report", "success")],
        ),
    ];
    let mut wrong = Vec::new();
    for (name, files, code, want) in cases {
        let refs: Vec<(&str, &str)> = files.iter().map(|(f, t)| (*f, t.as_str())).collect();
        let (got_code, out, report) = scenario(name, &refs, &[]);
        let (flows, _) = statuses(&report);
        let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        if got_code != code || flows != want {
            wrong.push(format!(
                "{name}: exit {got_code:?} (want {code:?})\n  got  {flows:?}\n  want {want:?}\n{out}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn skipped_workflows_have_skipped_step_rows_and_lines_name_their_workflow() {
    let files = [
        (
            "build.yaml",
            "steps:\n  - name: compile\n    image: x\n    commands: [echo compiling, exit 1]\n",
        ),
        (
            "deploy.yaml",
            "depends_on: [build]\nsteps:\n  - name: ship\n    image: x\n    commands: [echo never]\n",
        ),
    ];
    let (code, text, report) = scenario("skip-rows", &files, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("[build/compile] compiling\n"), "{text}");
    assert!(
        text.contains("# deploy: skipped (it depends on `build`, which ended failure)"),
        "{text}"
    );
    let rows = summary(&text);
    assert!(
        rows.contains(&("deploy/ship".to_string(), "skipped".to_string())),
        "{text}"
    );
    assert_eq!(report["status"], "failure");
    assert_eq!(report["workflows"][1]["steps"][0]["status"], "skipped");
}

#[test]
fn a_step_with_a_missing_required_dependency_fails_before_anything_runs() {
    let files = [(
        "ci.yaml",
        "steps:\n  - name: build\n    image: x\n    commands: [echo b]\n  - name: deploy\n    image: x\n    commands: [echo d]\n    depends_on: [build, ghost-step]\n",
    )];
    let (code, text, report) = scenario("missing-step-dep", &files, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("error: .woodpecker/ci.yaml:8: steps.deploy.depends_on: depends on `ghost-step`, which is not a step of this workflow"),
        "{text}"
    );
    assert_eq!(report, serde_json::Value::Null, "no report without a run");
}

#[test]
fn independent_workflows_run_at_the_same_time_within_the_bound() {
    // Each workflow waits for the other's file: only a parallel run finishes.
    let dir = tempdir("meet");
    let a = dir.join("a");
    let b = dir.join("b");
    let wf = |me: &std::path::Path, other: &std::path::Path| {
        format!(
            "steps:\n  - name: meet\n    image: x\n    commands:\n      - touch {}\n      - for i in $(seq 100); do [ -e {} ] && exit 0; sleep 0.1; done; exit 1\n",
            me.display(),
            other.display()
        )
    };
    let files = [("a.yaml", wf(&a, &b)), ("b.yaml", wf(&b, &a))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(f, t)| (*f, t.as_str())).collect();
    let (code, text, report) = scenario("meet", &refs, &["--max-workflows", "2"]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        statuses(&report).0,
        [
            ("a".to_string(), "success".to_string()),
            ("b".to_string(), "success".to_string())
        ]
    );
    // One at a time, the first waits in vain.
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    let (code, text, report) = scenario("meet-seq", &refs, &["--max-workflows", "1"]);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        statuses(&report).0[0],
        ("a".to_string(), "failure".to_string()),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
