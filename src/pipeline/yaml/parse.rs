//! YAML values to [`Workflow`]: every key Woodpecker pipelines use that this front end
//! implements, each checked for its type; any other key is a "not supported" error pointing
//! at its line. No defaults, no resolution (that is the compiler's job).

use std::collections::BTreeMap;

use super::node::{Node, scalar};
use super::types::{Container, List, Value, When, Workflow};
use crate::pipeline::error::Error;

const TOP_KEYS: &[&str] = &[
    "when",
    "steps",
    "services",
    "workspace",
    "clone",
    "skip_clone",
    "depends_on",
    "labels",
    "variables",
    "matrix",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "image",
    "pull",
    "commands",
    "entrypoint",
    "environment",
    "settings",
    "depends_on",
    "detach",
    "failure",
    "privileged",
    "volumes",
    "directory",
    "ports",
    "backend_options",
    "when",
];
const SERVICE_KEYS: &[&str] = &[
    "name",
    "image",
    "pull",
    "commands",
    "entrypoint",
    "environment",
    "settings",
    "privileged",
    "volumes",
    "directory",
    "ports",
    "backend_options",
    "when",
];
const WHEN_KEYS: &[&str] = &[
    "status",
    "event",
    "branch",
    "ref",
    "path",
    "platform",
    "repo",
    "instance",
    "cron",
    "environment",
    "matrix",
    "local",
    "evaluate",
];
const EVENTS: &[&str] = &[
    "push",
    "pull_request",
    "pull_request_closed",
    "pull_request_metadata",
    "tag",
    "release",
    "deployment",
    "cron",
    "manual",
];

/// Reads one workflow document.
pub fn workflow(root: &Node<'_>, name: &str, axis: BTreeMap<String, String>) -> Result<Workflow, Error> {
    if root.is_null() {
        return Err(root.invalid("the file is empty"));
    }
    root.only_keys(TOP_KEYS)?;
    let mut wf = Workflow {
        name: name.to_owned(),
        file: root.file().to_owned(),
        axis,
        ..Default::default()
    };
    if let Some(n) = root.get("when") {
        wf.when = when(&n)?;
    }
    if let Some(n) = root.get("depends_on") {
        wf.depends_on = n.strings()?;
    }
    if let Some(n) = root.get("labels") {
        for (k, v) in n.entries()? {
            wf.labels.insert(k, v.string()?);
        }
    }
    if let Some(n) = root.get("workspace") {
        n.only_keys(&["base", "path"])?;
        wf.workspace_base = n.get("base").map(|b| b.string()).transpose()?;
        wf.workspace_path = n.get("path").map(|p| p.string()).transpose()?;
    }
    if let Some(n) = root.get("skip_clone") {
        wf.skip_clone = n.boolean()?;
    }
    if let Some(n) = root.get("clone") {
        wf.clone = containers(&n, STEP_KEYS)?;
    }
    if let Some(n) = root.get("services") {
        wf.services = containers(&n, SERVICE_KEYS)?;
    }
    let Some(steps) = root.get("steps") else {
        return Err(root.invalid("a workflow needs `steps`"));
    };
    wf.steps = containers(&steps, STEP_KEYS)?;
    if wf.steps.is_empty() {
        return Err(steps.invalid("a workflow needs at least one step"));
    }
    Ok(wf)
}

/// `steps:` as a map (name -> step) or a list of steps with `name`.
fn containers(node: &Node<'_>, keys: &[&str]) -> Result<Vec<Container>, Error> {
    let mut out: Vec<Container> = Vec::new();
    if let serde_yaml::Value::Sequence(seq) = node.value {
        for (i, v) in seq.iter().enumerate() {
            let name = v.get("name").and_then(scalar);
            let item = node.item(i, v, name.as_deref());
            let Some(name) = name else {
                return Err(item.invalid("a step in a list needs a `name`"));
            };
            if out.iter().any(|c| c.name == name) {
                return Err(item.invalid(format!("duplicate step name `{name}`")));
            }
            out.push(container(&item, &name, keys)?);
        }
    } else {
        for (name, item) in node.entries()? {
            out.push(container(&item, &name, keys)?);
        }
    }
    Ok(out)
}

fn container(node: &Node<'_>, name: &str, keys: &[&str]) -> Result<Container, Error> {
    node.only_keys(keys)?;
    let mut c = Container {
        name: name.to_owned(),
        line: node.line(),
        ..Default::default()
    };
    for (key, n) in node.entries()? {
        match key.as_str() {
            "name" => {}
            "image" => c.image = n.string()?,
            "pull" => c.pull = n.boolean()?,
            "commands" => c.commands = n.strings()?,
            "entrypoint" => c.entrypoint = n.strings()?,
            "environment" => c.environment = values(&n, false)?,
            "settings" => c.settings = values(&n, true)?,
            "depends_on" => c.depends_on = Some(n.strings()?),
            "detach" => c.detach = n.boolean()?,
            "failure" => {
                let f = n.string()?;
                if !matches!(f.as_str(), "fail" | "ignore" | "cancel") {
                    return Err(n.invalid(format!("`{f}` is not one of fail, ignore, cancel")));
                }
                c.failure = Some(f);
            }
            "privileged" => c.privileged = n.boolean()?,
            "volumes" => c.volumes = n.strings()?,
            "directory" => c.directory = Some(n.string()?),
            "ports" => c.ports = ports(&n)?,
            "backend_options" => {
                for (k, v) in n.entries()? {
                    c.backend_options.insert(k, json(&v)?);
                }
            }
            "when" => c.when = when(&n)?,
            _ => unreachable!("only_keys checked {key}"),
        }
    }
    if c.image.is_empty() {
        return Err(node.invalid("a step needs an `image`"));
    }
    if !c.settings.is_empty() && !c.commands.is_empty() {
        return Err(node.invalid("a step cannot have both `commands` and `settings`"));
    }
    Ok(c)
}

/// `environment:` (scalars only) or `settings:` (any value), with `from_secret`.
fn values(node: &Node<'_>, structured: bool) -> Result<Vec<(String, Value, usize)>, Error> {
    let mut out = Vec::new();
    for (k, n) in node.entries()? {
        let line = n.line();
        if let Some(secret) = n.get("from_secret") {
            n.only_keys(&["from_secret"])?;
            out.push((k, Value::FromSecret(secret.string()?), line));
            continue;
        }
        let v = match scalar(n.value) {
            Some(s) if !structured => serde_json::Value::String(s),
            None if !structured && !n.is_null() => {
                return Err(n.invalid("expected a string, a number, a boolean or {from_secret: NAME}"));
            }
            _ if n.is_null() => serde_json::Value::String(String::new()),
            _ => json(&n)?,
        };
        out.push((k, Value::Plain(v), line));
    }
    Ok(out)
}

fn json(node: &Node<'_>) -> Result<serde_json::Value, Error> {
    serde_json::to_value(node.value).map_err(|e| node.invalid(format!("cannot be expressed as JSON: {e}")))
}

fn ports(node: &Node<'_>) -> Result<Vec<(u16, String)>, Error> {
    node.items()?
        .iter()
        .map(|p| {
            let text = p.string()?;
            let (num, proto) = text.split_once('/').unwrap_or((&text, ""));
            let n: u16 = num
                .parse()
                .map_err(|_| p.invalid(format!("`{text}` is not a port (8080 or 8080/tcp)")))?;
            Ok((n, proto.to_owned()))
        })
        .collect()
}

fn when(node: &Node<'_>) -> Result<Vec<When>, Error> {
    match node.value {
        serde_yaml::Value::Sequence(_) => node.items()?.iter().map(when_one).collect(),
        _ => Ok(vec![when_one(node)?]),
    }
}

fn when_one(node: &Node<'_>) -> Result<When, Error> {
    node.only_keys(WHEN_KEYS)?;
    let mut w = When {
        key: node.key().to_owned(),
        line: node.line(),
        ..Default::default()
    };
    for (key, n) in node.entries()? {
        match key.as_str() {
            "status" => {
                w.status = n.strings()?;
                if let Some(bad) = w.status.iter().find(|s| *s != "success" && *s != "failure") {
                    return Err(n.invalid(format!("`{bad}` is not a status (success, failure)")));
                }
            }
            "event" => {
                w.event = list(&n)?;
                if let Some(bad) = w
                    .event
                    .include
                    .iter()
                    .chain(&w.event.exclude)
                    .find(|e| !EVENTS.contains(&e.as_str()))
                {
                    return Err(n.invalid(format!("`{bad}` is not an event ({})", EVENTS.join(", "))));
                }
            }
            "branch" => w.branch = list(&n)?,
            "ref" => w.reference = list(&n)?,
            "path" => w.path = list(&n)?,
            "platform" => w.platform = list(&n)?,
            "repo" => w.repo = list(&n)?,
            "instance" => w.instance = list(&n)?,
            "cron" => w.cron = list(&n)?,
            "environment" => w.environment = list(&n)?,
            "matrix" => {
                for (k, v) in n.entries()? {
                    w.matrix.insert(k, v.string()?);
                }
            }
            "local" => w.local = Some(n.boolean()?),
            "evaluate" => {
                w.evaluate = Some(n.string()?);
                w.evaluate_line = n.line();
            }
            _ => unreachable!("only_keys checked {key}"),
        }
    }
    Ok(w)
}

/// A string, a list, or `{include, exclude}` (plus `on_empty` for paths).
fn list(node: &Node<'_>) -> Result<List, Error> {
    if let serde_yaml::Value::Mapping(_) = node.value {
        node.only_keys(&["include", "exclude", "on_empty"])?;
        return Ok(List {
            include: node
                .get("include")
                .map(|n| n.strings())
                .transpose()?
                .unwrap_or_default(),
            exclude: node
                .get("exclude")
                .map(|n| n.strings())
                .transpose()?
                .unwrap_or_default(),
            on_empty: node.get("on_empty").map(|n| n.boolean()).transpose()?,
        });
    }
    Ok(List {
        include: node.strings()?,
        ..Default::default()
    })
}
