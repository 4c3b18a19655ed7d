//! YAML tree to [`Workflow`], by Woodpecker 3.x's decoding (its `yaml/types` and
//! `constraint` unmarshalers) and its linter: what Go fails to decode (a list where a string
//! belongs, a map in `event:`) and what the linter rejects (no steps, no image, `commands` with
//! `settings`, a required step dependency that does not exist, two services with one name) is
//! an error naming file, line and key; what Go ignores and the linter only warns about (an
//! unknown key, an event or status outside the list, `environment` with `settings`, the
//! deprecated `runs_on`) is a [`Warning`](crate::pipeline::error::Warning). No defaults, no
//! resolution (that is the compiler's job).

use std::collections::{BTreeMap, HashSet};

use super::node::Node;
use super::tree::{Kind, V, Yaml};
use super::types::{Container, Dep, List, PathList, Value, When, Workflow};
use crate::pipeline::error::PipelineError;

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
    "concurrency",
    "runs_on",
    "$schema",
];
const CONTAINER_KEYS: &[&str] = &[
    "name",
    "image",
    "pull",
    "commands",
    "entrypoint",
    "directory",
    "settings",
    "environment",
    "depends_on",
    "when",
    "failure",
    "detach",
    "volumes",
    "ports",
    "dns",
    "dns_search",
    "backend_options",
    "privileged",
    "devices",
    "extra_hosts",
    "network_mode",
    "tmpfs",
];
const WHEN_KEYS: &[&str] = &[
    "ref", "repo", "instance", "platform", "branch", "cron", "status", "matrix", "local", "path", "evaluate", "event",
];
pub const EVENTS: &[&str] = &[
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
/// Deprecated variables Woodpecker's linter warns about, with their replacement.
const DEPRECATED_VARS: &[(&str, &str)] = &[
    ("CI_COMMIT_PRERELEASE", "CI_PIPELINE_RELEASE_PRE"),
    ("CI_COMMIT_AUTHOR_AVATAR", "CI_PIPELINE_AVATAR"),
    ("CI_PREV_COMMIT_AUTHOR_AVATAR", "CI_PREV_PIPELINE_AVATAR"),
];

/// Which list a container belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Area {
    Clone,
    Steps,
    Services,
}

impl Area {
    fn name(self) -> &'static str {
        match self {
            Area::Clone => "clone",
            Area::Steps => "steps",
            Area::Services => "services",
        }
    }
}

/// Reads one workflow document.
pub fn workflow(root: &Node<'_>, name: &str, axis: BTreeMap<String, String>) -> Result<Workflow, PipelineError> {
    if !root.is_map() && !root.is_null() {
        return Err(root.invalid("a workflow file must be a map of keys (`steps:`, `when:`, ...)"));
    }
    root.warn_unknown(TOP_KEYS, "a workflow")?;
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
        wf.depends_on = depends_on(&n)?;
    }
    if let Some(n) = root.get("runs_on") {
        wf.runs_on = n.string_list()?;
        n.warn("deprecated: use `when: status` (Woodpecker still applies it, and so does exec)");
    }
    if let Some(n) = root.get("concurrency") {
        concurrency(&n)?;
        n.warn("a server setting: no effect on a local run");
    }
    if let Some(n) = root.get("labels") {
        for (k, v) in n.entries()? {
            if !v.is_null() && v.y.as_scalar().is_none() {
                return Err(v.invalid("a label value must be a string"));
            }
            wf.labels.insert(k, v.string()?);
        }
    }
    if let Some(n) = root.get("workspace") {
        if !n.is_map() {
            return Err(n.invalid("expected a map with `base` and `path`"));
        }
        wf.workspace_base = n.get("base").map(|b| b.string()).transpose()?.filter(|s| !s.is_empty());
        wf.workspace_path = n.get("path").map(|p| p.string()).transpose()?.filter(|s| !s.is_empty());
    }
    if let Some(n) = root.get("skip_clone") {
        wf.skip_clone = n.boolean()?;
    }
    if let Some(n) = root.get("clone") {
        wf.clone = containers(&n, Area::Clone)?;
    }
    if let Some(n) = root.get("services") {
        wf.services = containers(&n, Area::Services)?;
        let mut seen = HashSet::new();
        for s in &wf.services {
            if !seen.insert(s.name.as_str()) {
                return Err(PipelineError::invalid(
                    root.file(),
                    s.line,
                    &format!("services.{}", s.name),
                    format!("service names must be unique: `{}` is used more than once", s.name),
                ));
            }
        }
    }
    match root.get("steps") {
        Some(steps) => {
            wf.steps = containers(&steps, Area::Steps)?;
            if wf.steps.is_empty() {
                return Err(steps.invalid("a workflow needs at least one step"));
            }
        }
        None if root.is_null() => return Err(root.invalid("the file is empty")),
        None => return Err(root.invalid("a workflow needs `steps`")),
    }
    check_step_dependencies(&wf)?;
    Ok(wf)
}

/// The linter's `depends_on` check: every required dependency names a step of the workflow.
fn check_step_dependencies(wf: &Workflow) -> Result<(), PipelineError> {
    let names: HashSet<&str> = wf.steps.iter().map(|s| s.name.as_str()).collect();
    for s in &wf.steps {
        for d in s.depends_on.iter().flatten() {
            if !d.optional && !names.contains(d.name.as_str()) {
                return Err(PipelineError::invalid(
                    &wf.file,
                    s.depends_on_line,
                    &format!("steps.{}.depends_on", s.name),
                    format!("depends on `{}`, which is not a step of this workflow", d.name),
                ));
            }
        }
    }
    Ok(())
}

/// Scans the raw text for deprecated variables, as Woodpecker's linter does.
pub fn deprecated_vars(file: &str, text: &str) -> Vec<crate::pipeline::error::Warning> {
    let mut out = Vec::new();
    for (old, new) in DEPRECATED_VARS {
        let found = text.match_indices(old).find(|(at, _)| {
            let before = &text[..*at];
            let after = text[at + old.len()..].chars().next();
            let braced = before.ends_with("${") && after == Some('}');
            let bare = before.ends_with('$') && !after.is_some_and(|c| c.is_alphanumeric() || c == '_');
            braced || bare
        });
        if let Some((at, _)) = found {
            out.push(crate::pipeline::error::Warning {
                file: file.to_owned(),
                line: text[..at].matches('\n').count() + 1,
                key: String::new(),
                msg: format!("`{old}` is deprecated, use `{new}`"),
            });
        }
    }
    out
}

/// `concurrency: 1` or `{limit: 1, group: deploy}` (type-checked as Woodpecker decodes it).
fn concurrency(n: &Node<'_>) -> Result<(), PipelineError> {
    match &n.y.v {
        V::Scalar(s) if matches!(s.kind, Kind::Int(_)) => Ok(()),
        V::Map(_) => {
            if let Some(l) = n.get("limit")
                && !matches!(l.y.as_scalar().map(|s| s.kind), Some(Kind::Int(_)))
            {
                return Err(l.invalid("expected a whole number"));
            }
            if let Some(g) = n.get("group") {
                g.string()?;
            }
            Ok(())
        }
        _ => Err(n.invalid("expected a whole number or a map with `limit` and `group`")),
    }
}

/// `depends_on`: a name, or a list of names and `{name, optional}` maps.
fn depends_on(n: &Node<'_>) -> Result<Vec<Dep>, PipelineError> {
    match &n.y.v {
        V::Scalar(s) => Ok(vec![Dep::required(&s.text)]),
        V::Seq(_) => n
            .items()?
            .iter()
            .map(|item| match &item.y.v {
                V::Scalar(s) if s.kind == Kind::Str => Ok(Dep::required(&s.text)),
                V::Map(_) => {
                    let Some(name) = item.get("name") else {
                        return Err(item.invalid("a dependency written as a map needs a `name`"));
                    };
                    if name.y.as_scalar().map(|s| s.kind) != Some(Kind::Str) {
                        return Err(name.invalid("expected the name of a step or workflow"));
                    }
                    let optional = match item.get("optional") {
                        None => false,
                        Some(o) => match o.y.as_scalar().map(|s| s.kind) {
                            Some(Kind::Bool(b)) => b,
                            _ => return Err(o.invalid("expected true or false")),
                        },
                    };
                    item.warn_unknown(&["name", "optional"], "a dependency")?;
                    Ok(Dep {
                        name: name.string()?,
                        optional,
                    })
                }
                _ => Err(item.invalid("expected a name or `{name: NAME, optional: true}`")),
            })
            .collect(),
        V::Map(_) => Err(n.invalid("expected a name or a list of names")),
    }
}

/// `steps:` as a map (name -> step) or a list of steps (named by `name`, else `step-N`).
fn containers(node: &Node<'_>, area: Area) -> Result<Vec<Container>, PipelineError> {
    let mut out: Vec<Container> = Vec::new();
    match &node.y.v {
        V::Seq(seq) => {
            for (i, v) in seq.iter().enumerate() {
                let named = v.get("name").and_then(|n| n.as_scalar()).map(|s| s.text.clone());
                let item = node.item(i, v, named.as_deref());
                let name = named.filter(|n| !n.is_empty()).unwrap_or_else(|| format!("step-{i}"));
                if area == Area::Services && v.get("name").is_none() {
                    item.warn("a service in a list should have a `name` (it is reached by that host name)");
                }
                out.push(container(&item, &name, area)?);
            }
        }
        V::Map(_) => {
            for (key, item) in node.entries()? {
                let named = item.get("name").map(|n| n.string()).transpose()?;
                let name = named.filter(|n| !n.is_empty()).unwrap_or(key);
                out.push(container(&item, &name, area)?);
            }
        }
        _ => return Err(node.invalid("expected a map of steps or a list of steps")),
    }
    Ok(out)
}

fn container(node: &Node<'_>, name: &str, area: Area) -> Result<Container, PipelineError> {
    if !node.is_map() && !node.is_null() {
        return Err(node.invalid("a step must be a map of keys (`image:`, `commands:`, ...)"));
    }
    node.warn_unknown(CONTAINER_KEYS, &format!("a step of `{}`", area.name()))?;
    let mut c = Container {
        name: name.to_owned(),
        line: node.line(),
        ..Default::default()
    };
    for (key, n) in node.entries()? {
        if n.is_null() {
            continue;
        }
        match key.as_str() {
            "image" => c.image = n.string()?,
            "pull" => c.pull = n.boolean()?,
            "commands" => c.commands = n.strings()?,
            "entrypoint" => c.entrypoint = n.strings()?,
            "directory" => c.directory = Some(n.string()?).filter(|d| !d.is_empty()),
            "environment" => c.environment = values(&n)?,
            "settings" => c.settings = values(&n)?,
            "depends_on" => {
                c.depends_on = Some(depends_on(&n)?);
                c.depends_on_line = n.line();
                if area == Area::Services {
                    n.warn("has no effect on a service (services start first, together)");
                }
            }
            "when" => c.when = when(&n)?,
            "failure" => {
                let f = n.string()?;
                if !matches!(f.as_str(), "fail" | "ignore" | "cancel") {
                    n.warn(format!(
                        "`{f}` is not one of fail, ignore, cancel; the step fails the workflow"
                    ));
                }
                c.failure = Some(f);
            }
            "detach" => c.detach = n.boolean()?,
            "volumes" => c.volumes = volumes(&n)?,
            "ports" => c.ports = ports(&n)?,
            "dns" => c.dns = n.strings()?,
            "dns_search" => c.dns_search = n.strings()?,
            "backend_options" => {
                for (k, v) in n.entries()? {
                    c.backend_options.insert(k, json(v.y));
                }
            }
            "privileged" => c.privileged = n.boolean()?,
            "devices" => c.devices = n.string_list()?,
            "extra_hosts" => c.extra_hosts = n.string_list()?,
            "network_mode" => c.network_mode = n.string()?,
            "tmpfs" => c.tmpfs = n.string_list()?,
            _ => {}
        }
    }
    for (key, list) in [
        ("dns", &c.dns),
        ("dns_search", &c.dns_search),
        ("extra_hosts", &c.extra_hosts),
    ] {
        if !list.is_empty()
            && let Some(n) = node.get(key)
        {
            n.warn("this agent's Kubernetes backend does not apply it yet (Woodpecker's does)");
        }
    }
    for key in ["devices", "tmpfs", "network_mode"] {
        if let Some(n) = node.get(key) {
            n.warn("no effect on Kubernetes (Woodpecker's Kubernetes backend ignores it too)");
        }
    }
    if c.image.is_empty() {
        return Err(node.invalid("a step needs an `image`"));
    }
    if !c.settings.is_empty() {
        if !c.commands.is_empty() {
            return Err(node.invalid("a step cannot have both `commands` and `settings`"));
        }
        if !c.entrypoint.is_empty() {
            return Err(node.invalid("a step cannot have both `entrypoint` and `settings`"));
        }
        if !c.environment.is_empty() {
            node.warn("should not have both `environment` and `settings` (it is no plugin then)");
        }
    }
    Ok(c)
}

/// `volumes:`: a list of strings (`name:/path`, `/host:/path:ro`).
fn volumes(n: &Node<'_>) -> Result<Vec<String>, PipelineError> {
    if !n.is_seq() {
        return Err(n.invalid("expected a list of volumes"));
    }
    n.strings()
}

/// `environment:` or `settings:`: every value as JSON (`from_secret` maps kept for the
/// compiler); null values are left out, as Woodpecker sets nothing for them.
fn values(node: &Node<'_>) -> Result<Vec<(String, Value, usize)>, PipelineError> {
    let mut out = Vec::new();
    for (k, n) in node.entries()? {
        if n.is_null() || k.is_empty() {
            continue;
        }
        let line = n.line();
        if n.is_map()
            && let Some(secret) = n.y.get("from_secret")
        {
            match secret.as_scalar() {
                Some(s) if s.kind == Kind::Str => out.push((k, Value::FromSecret(s.text.clone()), line)),
                _ => return Err(n.invalid("`from_secret` must name a secret")),
            }
            continue;
        }
        out.push((k, Value::Plain(json(n.y)), line));
    }
    Ok(out)
}

/// A YAML value as Go's `any` would marshal it to JSON: typed scalars, maps keyed by text.
pub fn json(y: &Yaml) -> serde_json::Value {
    use serde_json::Value as J;
    match &y.v {
        V::Scalar(s) => match s.kind {
            Kind::Null => J::Null,
            Kind::Bool(b) => J::Bool(b),
            Kind::Int(i) => J::from(i),
            Kind::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => J::from(f as i64),
            Kind::Float(f) => serde_json::Number::from_f64(f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(s.text.clone())),
            Kind::Str | Kind::Merge => J::String(s.text.clone()),
        },
        V::Seq(items) => J::Array(items.iter().map(json).collect()),
        V::Map(entries) => {
            // Inserted one by one, the last of equal keys winning as with `collect`, which
            // would carry a copy of the stable sort of its own.
            let mut map = serde_json::Map::new();
            for (k, v) in entries {
                map.insert(k.as_scalar().map(|s| s.text.clone()).unwrap_or_default(), json(v));
            }
            J::Object(map)
        }
    }
}

fn ports(node: &Node<'_>) -> Result<Vec<(u16, String)>, PipelineError> {
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

fn when(node: &Node<'_>) -> Result<Vec<When>, PipelineError> {
    match &node.y.v {
        V::Seq(_) => node.items()?.iter().map(when_one).collect(),
        V::Map(_) => Ok(vec![when_one(node)?]),
        _ => Err(node.invalid("expected a map of conditions or a list of them")),
    }
}

fn when_one(node: &Node<'_>) -> Result<When, PipelineError> {
    let mut w = When {
        key: node.key().to_owned(),
        line: node.line(),
        ..Default::default()
    };
    if node.is_null() {
        return Ok(w);
    }
    if !node.is_map() {
        return Err(node.invalid("expected a map of conditions (`event:`, `branch:`, ...)"));
    }
    node.warn_unknown(WHEN_KEYS, "`when`")?;
    for (key, n) in node.entries()? {
        if n.is_null() {
            continue;
        }
        match key.as_str() {
            "status" => {
                w.status = n.strings()?;
                for bad in w.status.iter().filter(|s| *s != "success" && *s != "failure") {
                    n.warn(format!("`{bad}` is not a status (success, failure); it never matches"));
                }
            }
            "event" => {
                w.event = n.strings()?;
                for bad in w.event.iter().filter(|e| !EVENTS.contains(&e.as_str())) {
                    n.warn(format!(
                        "`{bad}` is not an event ({}); it never matches",
                        EVENTS.join(", ")
                    ));
                }
            }
            "branch" => w.branch = list(&n)?,
            "ref" => w.reference = list(&n)?,
            "path" => w.path = path_list(&n)?,
            "platform" => w.platform = list(&n)?,
            "repo" => w.repo = list(&n)?,
            "instance" => w.instance = list(&n)?,
            "cron" => w.cron = list(&n)?,
            "matrix" => matrix_map(&n, &mut w),
            "local" => w.local = Some(n.boolean()?),
            "evaluate" => {
                w.evaluate = Some(n.string()?);
                w.evaluate_line = n.line();
            }
            _ => {}
        }
    }
    Ok(w)
}

/// `matrix:` in `when`: `{KEY: glob}` or `{include: {...}, exclude: {...}}`; what does not fit
/// is ignored, as Woodpecker ignores it.
fn matrix_map(n: &Node<'_>, w: &mut When) {
    let Ok(entries) = n.entries() else { return };
    for (k, v) in entries {
        let target = match k.as_str() {
            "include" if v.is_map() => &mut w.matrix_include,
            "exclude" if v.is_map() => &mut w.matrix_exclude,
            _ => {
                if let Some(s) = v.y.as_scalar() {
                    w.matrix_include.insert(k, s.text.clone());
                }
                continue;
            }
        };
        for (mk, mv) in v.entries().unwrap_or_default() {
            if let Some(s) = mv.y.as_scalar() {
                target.insert(mk, s.text.clone());
            }
        }
    }
}

/// A string, a list, or `{include, exclude}`.
fn list(node: &Node<'_>) -> Result<List, PipelineError> {
    if node.is_map() {
        node.warn_unknown(&["include", "exclude"], "a condition list")?;
        return Ok(List {
            include: strings_at(node, "include")?,
            exclude: strings_at(node, "exclude")?,
        });
    }
    Ok(List {
        include: node.strings()?,
        ..Default::default()
    })
}

/// The strings under `key` of a map node (a string or a list); none when absent.
fn strings_at(node: &Node<'_>, key: &str) -> Result<Vec<String>, PipelineError> {
    Ok(node.get(key).map(|n| n.strings()).transpose()?.unwrap_or_default())
}

/// `path:`: a list, or `{include, exclude, ignore_message, on_empty}`.
fn path_list(node: &Node<'_>) -> Result<PathList, PipelineError> {
    if node.is_map() {
        node.warn_unknown(&["include", "exclude", "ignore_message", "on_empty"], "`path`")?;
        return Ok(PathList {
            include: strings_at(node, "include")?,
            exclude: strings_at(node, "exclude")?,
            ignore_message: node
                .get("ignore_message")
                .map(|n| n.string())
                .transpose()?
                .unwrap_or_default(),
            on_empty: node.get("on_empty").map(|n| n.boolean()).transpose()?,
        });
    }
    Ok(PathList {
        include: node.strings()?,
        ..Default::default()
    })
}
