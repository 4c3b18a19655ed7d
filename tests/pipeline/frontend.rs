//! The YAML front end and the compiler: each supported key, and each kind of bad input with
//! the exact error the user sees.

use std::collections::BTreeMap;

use woodpecker_k8s_agent::backend::{Step, WorkflowConfig};
use woodpecker_k8s_agent::pipeline::Metadata;
use woodpecker_k8s_agent::pipeline::compile::{self, CompileOptions};
use woodpecker_k8s_agent::pipeline::yaml::{self, Workflow};

fn env(name: &str) -> Option<String> {
    (name == "CI_COMMIT_BRANCH").then(|| "main".to_string())
}

fn load(text: &str) -> Result<Vec<Workflow>, String> {
    yaml::load("ci.yaml", "ci", text, &env)
        .map(|l| l.workflows)
        .map_err(|e| e.to_string())
}

fn compile_with(text: &str, opts: &CompileOptions) -> Result<Option<WorkflowConfig>, String> {
    let wfs = load(text)?;
    assert_eq!(wfs.len(), 1);
    compile::compile(&wfs[0], opts)
        .map(|c| c.map(|c| c.config))
        .map_err(|e| e.to_string())
}

fn compile(text: &str) -> WorkflowConfig {
    compile_with(text, &CompileOptions::default())
        .unwrap()
        .expect("workflow excluded")
}

/// Stage -> step names.
fn shape(c: &WorkflowConfig) -> Vec<Vec<String>> {
    c.stages
        .iter()
        .map(|s| s.steps.iter().map(|s| s.name.clone()).collect())
        .collect()
}

fn step<'a>(c: &'a WorkflowConfig, name: &str) -> &'a Step {
    c.stages
        .iter()
        .flat_map(|s| &s.steps)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[test]
fn steps_as_map_or_list_run_in_file_order() {
    let map = compile(
        "steps:\n  b:\n    image: alpine\n    commands: echo b\n  a:\n    image: alpine\n    commands: [echo a]\n",
    );
    let list = compile(
        "steps:\n  - name: b\n    image: alpine\n    commands: echo b\n  - name: a\n    image: alpine\n    commands: [echo a]\n",
    );
    assert_eq!(shape(&map), [["b"], ["a"]]);
    assert_eq!(shape(&list), shape(&map));
    let b = step(&map, "b");
    assert_eq!(
        (b.type_.as_str(), b.commands.clone()),
        ("commands", vec!["echo b".to_string()])
    );
    assert_eq!(b.working_dir, "/woodpecker/src");
    assert_eq!(b.workspace_base, "/woodpecker");
    assert!(b.volumes[0].starts_with("wp_") && b.volumes[0].ends_with("_1_default:/woodpecker"));
    assert_eq!(b.volumes[0].split(':').next().unwrap(), map.volume);
    assert_eq!(b.uuid.len(), 26);
    assert!(b.on_success && !b.on_failure && b.failure == "fail");
    assert_eq!(b.environment["CI_WORKFLOW_NAME"], "ci");
    assert_eq!(b.environment["CI_PIPELINE_EVENT"], "manual");
}

#[test]
fn every_step_key_compiles() {
    let c = compile(
        r#"
labels:
  team: infra
steps:
  build:
    image: golang:1.22
    pull: true
    privileged: true
    detach: true
    failure: ignore
    entrypoint: ["/bin/sh", "-c"]
    commands:
      - go build
    environment:
      GOFLAGS: -mod=vendor
      CGO_ENABLED: 0
    volumes: [cache:/go/pkg]
    directory: cmd/app
    ports: [8080, "9090/udp"]
    backend_options:
      kubernetes:
        resources:
          limits: {memory: 1Gi}
"#,
    );
    let s = step(&c, "build");
    assert_eq!(s.image, "golang:1.22");
    assert!(s.pull && s.privileged && s.detached);
    assert_eq!(s.failure, "ignore");
    assert_eq!(s.entrypoint, ["/bin/sh", "-c"]);
    assert_eq!(
        (s.environment["GOFLAGS"].as_str(), s.environment["CGO_ENABLED"].as_str()),
        ("-mod=vendor", "0")
    );
    assert_eq!(&s.volumes[1..], ["cache:/go/pkg"]);
    assert_eq!(s.working_dir, "/woodpecker/src/cmd/app");
    let ports: Vec<_> = s.ports.iter().map(|p| (p.number, p.protocol.as_str())).collect();
    assert_eq!(ports, [(8080, ""), (9090, "udp")]);
    assert_eq!(s.backend_options["kubernetes"]["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(s.workflow_labels["team"], "infra");
}

#[test]
fn settings_become_plugin_variables() {
    let opts = CompileOptions {
        secrets: BTreeMap::from([("docker_pw".into(), "hunter22".into())]),
        ..Default::default()
    };
    let c = compile_with(
        r#"
steps:
  publish:
    image: woodpeckerci/plugin-docker-buildx
    settings:
      repo: example/app
      dry-run: true
      auto.tag: 3
      tags: [latest, "1.0"]
      build_args: {A: b}
      password:
        from_secret: docker_pw
"#,
        &opts,
    )
    .unwrap()
    .unwrap();
    let s = step(&c, "publish");
    assert_eq!(s.type_, "plugin");
    let e = &s.environment;
    assert_eq!(e["PLUGIN_REPO"], "example/app");
    assert_eq!(e["PLUGIN_DRY_RUN"], "true");
    assert_eq!(e["PLUGIN_AUTO_TAG"], "3");
    assert_eq!(e["PLUGIN_TAGS"], "latest,1.0");
    assert_eq!(e["PLUGIN_BUILD_ARGS"], r#"{"A":"b"}"#);
    assert_eq!(e["PLUGIN_PASSWORD"], "hunter22");
    assert_eq!(
        s.secret_mapping,
        BTreeMap::from([("PLUGIN_PASSWORD".into(), "hunter22".into())])
    );
    assert_eq!(c.secrets.len(), 1);
    assert_eq!(c.secrets[0].name, "docker_pw");
}

#[test]
fn from_secret_in_environment_goes_to_the_secret_mapping() {
    let opts = CompileOptions {
        secrets: BTreeMap::from([("token".into(), "s3cr3t".into())]),
        ..Default::default()
    };
    let c = compile_with("steps:\n  a:\n    image: alpine\n    commands: [env]\n    environment:\n      TOKEN:\n        from_secret: token\n", &opts)
        .unwrap()
        .unwrap();
    let s = step(&c, "a");
    assert_eq!(s.environment["TOKEN"], "s3cr3t");
    assert_eq!(s.secret_mapping["TOKEN"], "s3cr3t");
    let wf =
        &load("steps:\n  a:\n    image: alpine\n    environment:\n      T:\n        from_secret: token\n").unwrap()[0];
    assert_eq!(compile::secret_names(wf), ["token"]);
}

#[test]
fn depends_on_makes_a_dag_of_stages() {
    let c = compile(
        "services:\n  db:\n    image: postgres\nsteps:\n  a:\n    image: x\n  b:\n    image: x\n    depends_on: [a]\n  c:\n    image: x\n    depends_on: a\n  d:\n    image: x\n    depends_on: [b, c]\n  e:\n    image: x\n",
    );
    assert_eq!(shape(&c), vec![vec!["db"], vec!["a", "e"], vec!["b", "c"], vec!["d"]]);
    let db = step(&c, "db");
    assert_eq!((db.type_.as_str(), db.detached), ("service", true));
}

#[test]
fn when_status_event_branch_evaluate_and_path() {
    let c = compile(
        r#"
steps:
  build: {image: x, commands: [make]}
  on-push: {image: x, commands: [x], when: {event: push}}
  on-main: {image: x, commands: [x], when: {branch: [main, "release/*"]}}
  not-main: {image: x, commands: [x], when: {branch: {exclude: main}}}
  notify: {image: x, commands: [x], when: {status: [failure]}}
  always: {image: x, commands: [x], when: [{status: [success, failure]}]}
  eval: {image: x, commands: [x], when: {evaluate: 'CI_COMMIT_BRANCH == "main" && CI_PIPELINE_EVENT != "push"'}}
  docs: {image: x, commands: [x], when: {path: {include: ["docs/**"], on_empty: false}}}
  code: {image: x, commands: [x], when: {path: "src/**"}}
  remote: {image: x, commands: [x], when: {local: false}}
  manual-or-tag: {image: x, commands: [x], when: [{event: tag}, {event: manual}]}
"#,
    );
    let names: Vec<String> = shape(&c).into_iter().flatten().collect();
    // `path` is only checked for push and pull request events (this run is manual), as in
    // Woodpecker: `docs` runs although `on_empty` is false.
    assert_eq!(
        names,
        [
            "build",
            "on-main",
            "notify",
            "always",
            "eval",
            "docs",
            "code",
            "manual-or-tag"
        ]
    );
    let notify = step(&c, "notify");
    assert_eq!((notify.on_success, notify.on_failure), (false, true));
    let always = step(&c, "always");
    assert_eq!((always.on_success, always.on_failure), (true, true));
}

#[test]
fn workflow_when_and_event_flag() {
    let text = "when:\n  event: push\nsteps:\n  a: {image: x, commands: [x]}\n";
    assert_eq!(compile_with(text, &CompileOptions::default()).unwrap(), None);
    let opts = CompileOptions {
        meta: Metadata {
            event: "push".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(compile_with(text, &opts).unwrap().is_some());
}

#[test]
fn matrix_expands_and_substitutes() {
    let text = r#"
matrix:
  GO: ["1.21", "1.22"]
  OS: [linux]
steps:
  test:
    image: golang:${GO}
    commands: [go test, "echo $${HOME} on ${CI_COMMIT_BRANCH}"]
  publish:
    image: plugins/x
"#;
    let wfs = load(text).unwrap();
    assert_eq!(wfs.len(), 2);
    assert_eq!(
        wfs[1].axis,
        BTreeMap::from([("GO".into(), "1.22".into()), ("OS".into(), "linux".into())])
    );
    let c = compile::compile(&wfs[1], &CompileOptions::default())
        .unwrap()
        .unwrap()
        .config;
    let t = step(&c, "test");
    assert_eq!(t.image, "golang:1.22");
    assert_eq!(t.commands[1], "echo ${HOME} on main");
    assert_eq!(t.environment["GO"], "1.22");
    // Matrix values go to non-plugin steps only.
    assert!(!step(&c, "publish").environment.contains_key("GO"));

    let include = "matrix:\n  include:\n    - NAME: runner1\n      ARCH: arm64\nsteps:\n  build:\n    image: x\n    commands: [uname]\n    backend_options:\n      kubernetes:\n        nodeSelector:\n          kubernetes.io/arch: \"${ARCH}\"\n";
    let wfs = load(include).unwrap();
    assert_eq!(wfs.len(), 1);
    let c = compile::compile(&wfs[0], &CompileOptions::default())
        .unwrap()
        .unwrap()
        .config;
    assert_eq!(
        step(&c, "build").backend_options["kubernetes"]["nodeSelector"]["kubernetes.io/arch"],
        "arm64"
    );
}

#[test]
fn anchors_aliases_variables_and_merges() {
    let c = compile(
        r#"
variables:
  - &golang "golang:1.22"
  - &defaults
    image: *golang
    environment:
      GOPROXY: off
steps:
  build:
    <<: *defaults
    commands: [go build]
  test:
    <<: *defaults
    image: golang:1.21
    commands: [go test]
"#,
    );
    assert_eq!(step(&c, "build").image, "golang:1.22");
    assert_eq!(step(&c, "build").environment["GOPROXY"], "off");
    assert_eq!(step(&c, "test").image, "golang:1.21");
}

#[test]
fn workspace_and_clone() {
    let c = compile(
        "workspace:\n  base: /go\n  path: src/app\nskip_clone: true\nsteps:\n  a: {image: x, commands: [pwd]}\n",
    );
    assert_eq!(step(&c, "a").working_dir, "/go/src/app");
    assert_eq!(step(&c, "a").environment["CI_WORKSPACE"], "/go/src/app");

    let wf = &load("steps:\n  a: {image: x, commands: [pwd]}\n").unwrap()[0];
    let none = compile::compile(wf, &CompileOptions::default()).unwrap().unwrap();
    assert_eq!(none.notes, ["no clone step: no remote URL (pass --repo-url to clone)"]);
    let mut meta = Metadata::default();
    meta.apply_remote("https://example.com/o/r.git");
    let with = compile::compile(
        wf,
        &CompileOptions {
            meta,
            ..Default::default()
        },
    )
    .unwrap()
    .unwrap()
    .config;
    assert_eq!(shape(&with), [["clone"], ["a"]]);
    let clone = step(&with, "clone");
    assert_eq!(
        (clone.type_.as_str(), clone.image.as_str()),
        ("clone", compile::CLONE_IMAGE)
    );
    assert_eq!(clone.environment["PLUGIN_DEPTH"], "0");
    assert_eq!(clone.environment["CI_REPO_CLONE_URL"], "https://example.com/o/r.git");

    let custom = compile(
        "clone:\n  git:\n    image: alpine/git\n    commands: [git clone x .]\nsteps:\n  a: {image: x, commands: [pwd]}\n",
    );
    assert_eq!(shape(&custom), [["git"], ["a"]]);
    assert_eq!(step(&custom, "git").type_, "clone");
}

#[test]
fn when_ref_platform_and_matrix() {
    let text = r#"
matrix:
  DB: [postgres, mysql]
steps:
  any: {image: x, commands: [x]}
  pg-only: {image: x, commands: [x], when: {matrix: {DB: postgres}}}
  heads: {image: x, commands: [x], when: {ref: "refs/heads/*"}}
  tags: {image: x, commands: [x], when: {ref: "refs/tags/*"}}
  arm: {image: x, commands: [x], when: {platform: "linux/arm*"}}
  this-platform: {image: x, commands: [x], when: {platform: "linux/*"}}
"#;
    let wfs = load(text).unwrap();
    let names = |wf: &Workflow| -> Vec<String> {
        let c = compile::compile(wf, &CompileOptions::default())
            .unwrap()
            .unwrap()
            .config;
        shape(&c).into_iter().flatten().collect()
    };
    let arm = std::env::consts::ARCH == "aarch64";
    let mut want = vec!["any", "pg-only", "heads"];
    if arm {
        want.push("arm");
    }
    want.push("this-platform");
    assert_eq!(names(&wfs[0]), want);
    assert!(!names(&wfs[1]).contains(&"pg-only".to_string()));
}

#[test]
fn services_and_clone_as_lists() {
    let c = compile(
        "clone:\n  - name: fetch\n    image: alpine/git\n    commands: [git init]\nservices:\n  - name: db\n    image: postgres\n    ports: [5432]\nsteps:\n  - name: a\n    image: x\n    commands: [pwd]\n",
    );
    assert_eq!(shape(&c), [["fetch"], ["db"], ["a"]]);
    assert_eq!(step(&c, "db").ports[0].number, 5432);
    assert_eq!(step(&c, "fetch").type_, "clone");
}

#[test]
fn sequence_merges_and_aliased_when_lists_as_woodpeckers_own_pipelines_write_them() {
    // The shapes of Woodpecker's .woodpecker/docs.yaml and test.yaml: `path: [<<: *a, <<: *b]`,
    // a merged list with an extra item, and `when: *alias` of a list of conditions.
    let text = r#"
variables:
  - path: &when_path
      - 'docs/**'
      - 'cli/**'
  - path: &docker_path
      - 'web/**'
  - &when
    - path: *when_path
      event: pull_request
steps:
  build:
    image: x
    commands:
      - <<: [*when_path, *docker_path]
      - echo done
    when:
      - event: push
        path:
          - <<: *when_path
          - <<: *docker_path
      - event: manual
  lint:
    image: x
    commands: [lint]
    when: *when
"#;
    let wfs = load(text).unwrap();
    let build = &wfs[0].steps[0];
    assert_eq!(build.commands, ["docs/**", "cli/**", "web/**", "echo done"]);
    assert_eq!(build.when[0].path.include, ["docs/**", "cli/**", "web/**"]);
    assert_eq!(wfs[0].steps[1].when[0].event, ["pull_request"]);
    let names: Vec<String> = shape(&compile(text)).into_iter().flatten().collect();
    assert_eq!(names, ["build"], "lint is for pull requests only");
}

#[test]
fn optional_dependencies_names_and_values_as_woodpecker_decodes_them() {
    let c = compile(
        r#"
steps:
  - image: x
    commands: [a]
  - name: lint
    image: x
    commands: [lint]
    when: {event: tag}
  build:
    image: x
"#
        .replace("  build:\n    image: x\n", "")
        .as_str(),
    );
    // A list step without a name is `step-N`.
    assert_eq!(shape(&c), [["step-0"]]);
    let c = compile(
        r#"
steps:
  first:
    name: renamed
    image: x
    commands: [a]
  lint:
    image: x
    commands: [lint]
    when: {event: tag}
  deploy:
    image: x
    commands: [d]
    environment:
      EMPTY:
      FLAG: true
      LIST: [a, 1, 1.5]
      MAP: {b: 2, a: x}
    depends_on: [renamed, {name: lint, optional: true}]
"#,
    );
    assert_eq!(shape(&c), [["renamed"], ["deploy"]]);
    let e = &step(&c, "deploy").environment;
    assert!(!e.contains_key("EMPTY"), "a null value sets no variable");
    assert_eq!((e["FLAG"].as_str(), e["LIST"].as_str()), ("true", "a,1,1.5"));
    assert_eq!(e["MAP"], r#"{"a":"x","b":2}"#);
}

#[test]
fn plugins_see_the_workspace_under_woodpecker() {
    let c = compile(
        "workspace:\n  base: /go\n  path: src/app\nsteps:\n  build:\n    image: golang\n    commands: [go build]\n  publish:\n    image: plugins/docker\n    settings: {repo: x}\n",
    );
    assert_eq!(step(&c, "build").working_dir, "/go/src/app");
    let p = step(&c, "publish");
    assert_eq!(
        (p.working_dir.as_str(), p.workspace_base.as_str()),
        ("/woodpecker/src/app", "/woodpecker")
    );
    assert_eq!(p.environment["CI_WORKSPACE"], "/woodpecker/src/app");
    assert!(p.volumes[0].ends_with("_default:/woodpecker"));
}

#[test]
fn matrix_is_sorted_by_name_and_stops_where_woodpecker_stops() {
    let wfs = load("matrix:\n  Z: [1, 2]\n  A: [x, y]\nsteps:\n  a:\n    image: x\n").unwrap();
    let axes: Vec<String> = wfs.iter().map(|w| yaml::axis_label(&w.axis)).collect();
    assert_eq!(axes, ["A=x, Z=1", "A=x, Z=2", "A=y, Z=1", "A=y, Z=2"]);
    // Ten axes of ten values: 10^10 combinations are never built; 27 items, with a warning.
    let mut text = String::from("matrix:\n");
    for i in 0..10 {
        text.push_str(&format!("  A{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"));
    }
    text.push_str("steps:\n  a:\n    image: x\n");
    let start = std::time::Instant::now();
    let loaded = yaml::load("ci.yaml", "ci", &text, &env).unwrap();
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(loaded.workflows.len(), 27);
    assert_eq!(
        loaded.warnings[0].to_string(),
        "ci.yaml:1: matrix: the matrix has 10000000000 combinations; Woodpecker runs only the first 27, and so does exec"
    );
}

/// `compile::check` (what `exec` plans with) says what `compile` says: the same error, the
/// same exclusion, the same number of stages, for every kind of workflow and failure.
#[test]
fn check_agrees_with_compile() {
    let cases = [
        "steps:\n  a:\n    image: x\n    commands: [echo]\n",
        "skip_clone: true\nsteps:\n  a:\n    image: x\n  b:\n    image: x\n    depends_on: [a]\n",
        "when:\n  branch: other\nsteps:\n  a:\n    image: x\n",
        "skip_clone: true\nsteps:\n  a:\n    image: x\n    when:\n      branch: other\n",
        "steps:\n  a:\n    image: x\n    environment:\n      T:\n        from_secret: nope\n",
        "steps:\n  a:\n    image: x\n    settings:\n      t:\n        from_secret: nope\n",
        "steps:\n  a:\n    image: x\n    extra_hosts: [no-colon]\n",
        "steps:\n  a:\n    image: x\n    when:\n      branch: other\n  b:\n    image: x\n    depends_on: [a]\n",
        "services:\n  db:\n    image: x\nsteps:\n  a:\n    image: x\n",
    ];
    let opts = CompileOptions {
        secrets: [("token".to_string(), "v".to_string())].into(),
        ..CompileOptions::default()
    };
    for text in cases {
        let wfs = load(text).unwrap();
        let full = compile::compile(&wfs[0], &opts)
            .map(|c| c.map(|c| c.config.stages.len()))
            .map_err(|e| e.to_string());
        let checked = compile::check(&wfs[0], &opts).map_err(|e| e.to_string());
        assert_eq!(checked, full, "{text}");
    }
}
