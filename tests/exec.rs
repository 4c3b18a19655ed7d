//! `exec` end to end through the binary: `--dry-run` over every pipeline in
//! `testdata/pipelines/` (compiled JSON, masking, matrix, events), workflow discovery and
//! `depends_on` order, and errors with their exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use woodpecker_k8s_agent::backend::Config;

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
fn dry_run(args: &[&str]) -> (Vec<Config>, String) {
    let mut all = vec!["--dry-run"];
    all.extend_from_slice(args);
    let out = exec(&all, Path::new(env!("CARGO_MANIFEST_DIR")));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exec {all:?} failed: {stderr}");
    let configs = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Config>()
        .collect::<Result<Vec<_>, _>>()
        .expect("stdout is backend JSON");
    (configs, stderr)
}

fn shape(c: &Config) -> Vec<Vec<&str>> {
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
    let c: Config = serde_json::from_slice(&out.stdout).unwrap();
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
    assert_eq!(stderr.lines().collect::<Vec<_>>(), ["# build", "# a-deploy"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_pipeline_and_unsupported_keys_are_errors() {
    let dir = tempdir("empty");
    let out = exec(&["--dry-run"], &dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no pipeline found in"),
        "{out:?}"
    );
    std::fs::write(
        dir.join(".woodpecker.yaml"),
        "steps:\n  a:\n    image: x\n    network_mode: host\n",
    )
    .unwrap();
    let out = exec(&["--dry-run"], &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        "error: not supported: steps.a.network_mode (.woodpecker.yaml:4)\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
