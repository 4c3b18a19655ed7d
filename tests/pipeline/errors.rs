//! Bad pipeline files: each kind of mistake (unknown keys, wrong types, bad values, cycles,
//! unknown dependencies, missing secrets, broken YAML) and the exact error the user sees.

use woodpecker_k8s_agent::pipeline::compile::{self, Options};
use woodpecker_k8s_agent::pipeline::yaml;

fn env(_: &str) -> Option<String> {
    None
}

/// The first error loading or compiling `text` as `ci.yaml`.
fn err(text: &str) -> String {
    match yaml::load("ci.yaml", "ci", text, &env) {
        Err(e) => e.to_string(),
        Ok(w) => compile::compile(&w[0], &Options::default())
            .map(|_| ())
            .expect_err("no error")
            .to_string(),
    }
}

#[test]
fn bad_input_errors_name_file_line_and_key() {
    let cases: &[(&str, &str)] = &[
        (
            "steps:\n  a:\n    image: x\nruns_on: [linux]\n",
            "not supported: runs_on (ci.yaml:4)",
        ),
        (
            "steps:\n  a:\n    image: x\n    shm_size: 1g\n",
            "not supported: steps.a.shm_size (ci.yaml:4)",
        ),
        (
            "steps:\n  - name: a\n    image: x\n    dns: [1.1.1.1]\n",
            "not supported: steps.a.dns (ci.yaml:4)",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      weekday: mon\n",
            "not supported: steps.a.when.weekday (ci.yaml:5)",
        ),
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
            "steps:\n  a:\n    image: x\n    failure: maybe\n",
            "ci.yaml:4: steps.a.failure: `maybe` is not one of fail, ignore, cancel",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      event: pushed\n",
            "ci.yaml:5: steps.a.when.event: `pushed` is not an event (push, pull_request, pull_request_closed, pull_request_metadata, tag, release, deployment, cron, manual)",
        ),
        (
            "steps:\n  a:\n    image: x\n    environment:\n      A: [1, 2]\n",
            "ci.yaml:5: steps.a.environment.A: expected a string, a number, a boolean or {from_secret: NAME}",
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
            "steps:\n  - image: x\n",
            "ci.yaml:2: steps[0]: a step in a list needs a `name`",
        ),
        (
            "steps:\n  - name: a\n    image: x\n  - name: a\n    image: y\n",
            "ci.yaml:4: steps.a: duplicate step name `a`",
        ),
        (
            "steps:\n  a:\n    image: x\n    commands: [x]\n    settings: {a: b}\n",
            "ci.yaml:2: steps.a: a step cannot have both `commands` and `settings`",
        ),
        ("when:\n  event: push\n", "ci.yaml: a workflow needs `steps`"),
        ("steps: {}\n", "ci.yaml:1: steps: a workflow needs at least one step"),
        ("", "ci.yaml: the file is empty"),
        (
            "steps:\n  a: [\n",
            "ci.yaml:3: not valid YAML: did not find expected node content",
        ),
        (
            "steps:\n  a:\n    image: ${GO\n",
            "ci.yaml:3: unterminated `${` (write `$${` for a literal one)",
        ),
        (
            "steps:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
            "ci.yaml:2: steps: depends_on has a cycle: a -> b -> a",
        ),
        (
            "steps:\n  a:\n    image: x\n    depends_on: [nope]\n",
            "ci.yaml:2: steps.a.depends_on: depends on `nope`, which is not a step of this workflow",
        ),
        (
            "steps:\n  a:\n    image: x\n    when: {event: push}\n  b:\n    image: x\n    depends_on: [a]\n",
            "ci.yaml:5: steps.b.depends_on: depends on `a`, which its `when:` excludes from this run",
        ),
        (
            "steps:\n  a:\n    image: x\n    environment:\n      T:\n        from_secret: token\n",
            "ci.yaml:5: steps.a.environment.T: secret `token` is not set (pass --secret token=VALUE or set $token in the environment)",
        ),
        (
            "steps:\n  a:\n    image: x\n    when:\n      evaluate: 'CI_X matches \"y\"'\n",
            "ci.yaml:5: steps.a.when.evaluate: `CI_X matches \"y\"`: `matches` is not supported",
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(text, want)| err(text) != *want)
        .map(|(text, want)| format!("input:\n{text}\n  want: {want}\n  got:  {}", err(text)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
