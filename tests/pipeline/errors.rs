//! Bad pipeline files, split as Woodpecker 3.x splits them: what its YAML decoding or its
//! linter rejects is an error (wrong types, no image, `commands` with `settings`, duplicate
//! services, unknown required dependencies, cycles, broken YAML, missing secrets), with the
//! exact text the user sees; what it accepts with a lint warning (unknown keys, events and
//! statuses outside the list, deprecated keys, server-only keys) is a warning naming file, line
//! and key, printed once however many matrix items share it.

use woodpecker_k8s_agent::pipeline::compile::{self, CompileOptions};
use woodpecker_k8s_agent::pipeline::yaml;

fn env(_: &str) -> Option<String> {
    None
}

/// The first error loading or compiling `text` as `ci.yaml`.
fn err(text: &str) -> String {
    match yaml::load("ci.yaml", "ci", text, &env) {
        Err(e) => e.to_string(),
        Ok(w) => match compile::compile(&w.workflows[0], &CompileOptions::default()) {
            Err(e) => e.to_string(),
            Ok(_) => format!("no error; warnings: {:?}", w.warnings),
        },
    }
}

/// The warnings of a file that loads and compiles.
fn warnings(text: &str) -> Vec<String> {
    let loaded = yaml::load("ci.yaml", "ci", text, &env).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for wf in &loaded.workflows {
        compile::compile(wf, &CompileOptions::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
    loaded.warnings.iter().map(|w| w.to_string()).collect()
}

#[test]
fn what_woodpecker_rejects_is_an_error_naming_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "steps:\n  a:\n    image: [x]\n",
            "ci.yaml:3: steps.a.image: expected a string",
        ),
        (
            "steps:\n  a:\n    image: x\n    privileged: maybe\n",
            "ci.yaml:4: steps.a.privileged: expected true or false",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands: {a: b}\n",
            "ci.yaml:4: steps.a.commands: expected a string or a list of strings",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands:\n      - echo\n      - 1\n",
            "ci.yaml:6: steps.a.commands[1]: expected a string, found a number (quote it)",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands:\n      - echo a: b\n",
            "ci.yaml:5: steps.a.commands[0]: expected a string, found a map (quote it if it contains `: `)",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      event: {exclude: push}\n",
            "ci.yaml:5: steps.a.when.event: expected a string or a list of strings",
        ),
        (
            "steps:\n  a:\n    image: x\n    when: 5\n",
            "ci.yaml:4: steps.a.when: expected a map of conditions or a list of them",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      branch: [main, {a: b}]\n",
            "ci.yaml:5: steps.a.when.branch[1]: expected a string, found a map (quote it if it contains `: `)",
        ),
        (
            "steps:\n  a:\n    image: x\n    ports: [http]\n",
            "ci.yaml:4: steps.a.ports[0]: `http` is not a port (8080 or 8080/tcp)",
        ),
        (
            "steps:\n  a:\n    commands: [x]\n",
            "ci.yaml:2: steps.a: a step needs an `image`",
        ),
        (
            "services:\n  - name: db\n    image: x\n  - name: db\n    image: y\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:4: services.db: service names must be unique: `db` is used more than once",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands: [x]\n    settings: {a: b}\n",
            "ci.yaml:2: steps.a: a step cannot have both `commands` and `settings`",
        ),
        (
            "steps:\n  a:\n    image: x\n    entrypoint: [sh]\n    settings: {a: b}\n",
            "ci.yaml:2: steps.a: a step cannot have both `entrypoint` and `settings`",
        ),
        ("when:\n  event: push\n", "ci.yaml:1: a workflow needs `steps`"),
        ("steps: {}\n", "ci.yaml:1: steps: a workflow needs at least one step"),
        ("", "ci.yaml: the file is empty"),
        (
            "- a\n- b\n",
            "ci.yaml:1: a workflow file must be a map of keys (`steps:`, `when:`, ...)",
        ),
        (
            "steps:\n  a: [\n",
            "ci.yaml:3: not valid YAML: did not find expected node content, while parsing a flow node",
        ),
        (
            "steps:\n  a:\n    image: x\n    image: y\n",
            "ci.yaml:4: `image` is written twice in one map (first on line 3)",
        ),
        ("steps:\n  a:\n    image: *nope\n", "ci.yaml:3: unknown anchor `nope`"),
        (
            "v: &l [a]\nsteps:\n  a:\n    image: x\n    environment:\n      <<: *l\n",
            "ci.yaml:6: bad `<<` merge: a list merges only into an item of a list (`- <<: *list`); here a map or a list of maps is expected",
        ),
        (
            "steps:\n  a:\n    image: ${GO\n",
            "ci.yaml:3: bad substitution: `}` expected (write `$${` for a literal `${`)",
        ),
        (
            "steps:\n  a:\n    image: ${{ secrets.x }}\n",
            "ci.yaml:3: bad substitution: a variable name is missing (write `$${` for a literal `${`)",
        ),
        (
            "steps:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
            "ci.yaml:4: steps: depends_on has a cycle: a -> b -> a",
        ),
        (
            "steps:\n  a:\n    image: x\n    depends_on: [nope]\n",
            "ci.yaml:4: steps.a.depends_on: depends on `nope`, which is not a step of this workflow",
        ),
        (
            "steps:\n  a:\n    image: x\n    when: {event: push}\n  b:\n    image: x\n    depends_on: [a]\n",
            "ci.yaml:7: steps.b.depends_on: depends on `a`, which its `when:` excludes from this run (make it `{name: a, optional: true}` to run without it)",
        ),
        (
            "steps:\n  - name: a\n    image: x\n    depends_on: []\n  - name: a\n    image: y\n",
            "ci.yaml:5: steps.a: step name `a` is used more than once; with depends_on, step names must be unique",
        ),
        (
            "steps:\n  a:\n    image: x\n    depends_on: [b, 5]\n  b:\n    image: x\n",
            "ci.yaml:4: steps.a.depends_on[1]: expected a name or `{name: NAME, optional: true}`",
        ),
        (
            "steps:\n  a:\n    image: x\n    depends_on:\n      - optional: true\n",
            "ci.yaml:5: steps.a.depends_on[0]: a dependency written as a map needs a `name`",
        ),
        (
            "steps:\n  a:\n    image: x\n    environment:\n      T:\n        from_secret: token\n",
            "ci.yaml:5: steps.a.environment.T: secret `token` is not set (pass --secret token=VALUE or set $token in the environment)",
        ),
        (
            "steps:\n  a:\n    image: x\n    settings:\n      logins:\n        - password:\n            from_secret: pw\n",
            "ci.yaml:5: steps.a.settings.logins: secret `pw` is not set (pass --secret pw=VALUE or set $pw in the environment)",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      evaluate: 'CI_X =='\n",
            "ci.yaml:5: steps.a.when.evaluate: `CI_X ==`: unexpected end of expression",
        ),
        (
            "matrix:\n  GO: 1.22\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:2: matrix.GO: expected a list of values",
        ),
        (
            "steps:\n  a:\n    image: x\n    extra_hosts: [nocolon]\n",
            "ci.yaml:2: steps.a.extra_hosts: `nocolon` is not NAME:IP",
        ),
        (
            "workspace: /x\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:1: workspace: expected a map with `base` and `path`",
        ),
        (
            "skip_clone: maybe\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:1: skip_clone: expected true or false",
        ),
        (
            "labels:\n  a: [1]\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:2: labels.a: a label value must be a string",
        ),
        (
            "concurrency: [1]\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:1: concurrency: expected a whole number or a map with `limit` and `group`",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, want)| err(text) != *want)
        .map(|(text, want)| format!("input:\n{text}\n  want: {want}\n  got:  {}", err(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn what_woodpecker_accepts_with_a_lint_warning_is_a_warning() {
    let cases: &[(&str, &str)] = &[
        (
            "steps:\n  a:\n    image: x\nbranches: main\n",
            "ci.yaml:4: branches: `branches` is not a key of a workflow; ignored",
        ),
        (
            "steps:\n  a:\n    image: x\n    shm_size: 1g\n",
            "ci.yaml:4: steps.a.shm_size: `shm_size` is not a key of a step of `steps`; ignored",
        ),
        (
            "steps:\n  - name: a\n    image: x\n    when:\n      - failure: ignore\n",
            "ci.yaml:5: steps.a.when[0].failure: `failure` is not a key of `when`; ignored",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      event: pushed\n",
            "ci.yaml:5: steps.a.when.event: `pushed` is not an event (push, pull_request, pull_request_closed, pull_request_metadata, tag, release, deployment, cron, manual); it never matches",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      status: [success, maybe]\n",
            "ci.yaml:5: steps.a.when.status: `maybe` is not a status (success, failure); it never matches",
        ),
        (
            "steps:\n  a:\n    image: x\n    failure: maybe\n",
            "ci.yaml:4: steps.a.failure: `maybe` is not one of fail, ignore, cancel; the step fails the workflow",
        ),
        (
            "steps:\n  a:\n    image: x\n    environment: {A: b}\n    settings: {c: d}\n",
            "ci.yaml:2: steps.a: should not have both `environment` and `settings` (it is no plugin then)",
        ),
        (
            "runs_on: [success, failure]\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:1: runs_on: deprecated: use `when: status` (Woodpecker still applies it, and so does exec)",
        ),
        (
            "concurrency:\n  limit: 1\n  group: deploy\nsteps:\n  a:\n    image: x\n",
            "ci.yaml:1: concurrency: a server setting: no effect on a local run",
        ),
        (
            "steps:\n  a:\n    image: x\nservices:\n  - image: mysql\n",
            "ci.yaml:5: services[0]: a service in a list should have a `name` (it is reached by that host name)",
        ),
        (
            "steps:\n  a:\n    image: x\n    dns: 1.1.1.1\n",
            "ci.yaml:4: steps.a.dns: this agent's Kubernetes backend does not apply it yet (Woodpecker's does)",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands: echo ${CI_COMMIT_PRERELEASE}\n",
            "ci.yaml:4: `CI_COMMIT_PRERELEASE` is deprecated, use `CI_PIPELINE_RELEASE_PRE`",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      path:\n        include: [a]\n        exclude_message: x\n",
            "ci.yaml:7: steps.a.when.path.exclude_message: `exclude_message` is not a key of `path`; ignored",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, want)| warnings(text) != [*want])
        .map(|(text, want)| format!("input:\n{text}\n  want: {want}\n  got:  {:?}", warnings(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_warning_shared_by_matrix_items_is_given_once() {
    let text = "matrix:\n  GO: [a, b, c]\nsteps:\n  a:\n    image: x\n    shm_size: 1g\n";
    assert_eq!(
        warnings(text),
        ["ci.yaml:6: steps.a.shm_size: `shm_size` is not a key of a step of `steps`; ignored"]
    );
}

#[test]
fn errors_point_at_the_key_in_every_indentation_style() {
    // `steps:` and `- name:` at the same column, flow maps over several lines, and a key
    // after a block scalar whose text looks like keys.
    let cases: &[(&str, &str)] = &[
        (
            "steps:\n- name: a\n  image: x\n- name: b\n  image: x\n  privileged: maybe\n",
            "ci.yaml:6: steps.b.privileged: expected true or false",
        ),
        (
            "steps:\n    -   name: a\n        image: [x]\n",
            "ci.yaml:3: steps.a.image: expected a string",
        ),
        (
            "steps:\n  a: {image: x,\n      pull: maybe}\n",
            "ci.yaml:3: steps.a.pull: expected true or false",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands: |\n      image: y\n      pull: z\n    pull: maybe\n",
            "ci.yaml:7: steps.a.pull: expected true or false",
        ),
        (
            "steps: [{name: a, image: x}, {name: b,\n  image: x, detach: maybe}]\n",
            "ci.yaml:2: steps.b.detach: expected true or false",
        ),
        (
            "variables:\n  - &base\n    image: x\n    pull: maybe\nsteps:\n  a:\n    <<: *base\n",
            "ci.yaml:4: steps.a.pull: expected true or false",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, want)| err(text) != *want)
        .map(|(text, want)| format!("input:\n{text}\n  want: {want}\n  got:  {}", err(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
