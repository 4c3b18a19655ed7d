//! Object names and label values, exactly as Woodpecker derives them (`toDNSName`,
//! `toLabelValue`, `getHostnameOrEmpty`, sha256 hash truncation), plus the names of every object
//! the backend creates. Pure string functions; knows nothing of options or the cluster.

use std::fmt;

use super::types::Step;

/// Max length of a DNS-1123 subdomain (object names).
pub const DNS_SUBDOMAIN_MAX: usize = 253;
/// Max length of a DNS-1123 label (container names, hostnames, volume names) and of a label value.
pub const DNS_LABEL_MAX: usize = 63;

/// The task (workflow id) label; the headless Service selects on it.
pub const TASK_LABEL: &str = "woodpecker-ci.org/task-uuid";
/// Our label naming the agent that created an object, so a later run can sweep leftovers.
pub const AGENT_LABEL: &str = "woodpecker-k8s-agent/agent";

/// A name that cannot be turned into a valid Kubernetes name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidName(pub String);

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a valid kubernetes DNS name", self.0)
    }
}
impl std::error::Error for InvalidName {}

/// The first 16 hex characters of sha256(input).
fn short_hash(input: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    digest.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Cuts `s` (ASCII after sanitising) so that `s + "-" + hash` fits `max`, trims `trim` characters
/// from the cut end and appends the hash of the original input.
fn truncate_with_hash(s: &str, original: &str, max: usize, trim: &[char]) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let base = max - 1 - 16;
    let mut cut = &s[..floor_char_boundary(s, base)];
    cut = cut.trim_end_matches(trim);
    format!("{cut}-{}", short_hash(original))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Replaces each run of characters for which `keep` is false with one `-`.
fn dash_runs(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if keep(c) {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// Collapses each run of two or more `seps` characters with `collapse(run)`.
fn collapse_runs(s: &str, seps: &[char], collapse: impl Fn(&str) -> char) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if seps.contains(&chars[i]) {
            let start = i;
            while i < chars.len() && seps.contains(&chars[i]) {
                i += 1;
            }
            if i - start >= 2 {
                let run: String = chars[start..i].iter().collect();
                out.push(collapse(&run));
            } else {
                out.push(chars[start]);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn is_label_part(p: &str) -> bool {
    let b = p.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= DNS_LABEL_MAX && is_label_part(s)
}

/// A DNS-1123 subdomain as Woodpecker checks it (the length of each part is not checked).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= DNS_SUBDOMAIN_MAX && s.split('.').all(is_label_part)
}

/// A label value: `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63 characters.
pub fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b.len() <= DNS_LABEL_MAX
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
}

/// A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 characters matching `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
pub fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let prefix_ok =
        prefix.is_none_or(|p| s.len() - name.len() - 1 <= DNS_SUBDOMAIN_MAX && p.split('.').all(is_dns_label));
    prefix_ok && !name.is_empty() && is_label_value(name)
}

/// Checks a map of labels (`values_are_labels`) or annotations: the first bad entry, described.
pub fn check_keys_values(map: &std::collections::BTreeMap<String, String>, values_are_labels: bool) -> Option<String> {
    map.iter().find_map(|(k, v)| {
        if !is_qualified_name(k) {
            Some(format!(
                "{k:?} is not a valid key (an optional DNS prefix and '/', then at most 63 of [-A-Za-z0-9_.])"
            ))
        } else if values_are_labels && !is_label_value(v) {
            Some(format!(
                "value {v:?} of {k:?} is not a valid label value (at most 63 of [-A-Za-z0-9_.], alphanumeric at both ends)"
            ))
        } else {
            None
        }
    })
}

/// Woodpecker's `toDNSName`: lowercase, dash runs of other characters, collapse `.`/`-` runs,
/// trim, hash-truncate to 253, validate.
pub fn to_dns_name(input: &str) -> Result<String, InvalidName> {
    let lower = input.to_lowercase();
    let dashed = dash_runs(&lower, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
    });
    let collapsed = collapse_runs(&dashed, &['.', '-'], |run| if run.contains('.') { '.' } else { '-' });
    let trimmed = collapsed.trim_matches(['-', '.']);
    let out = truncate_with_hash(trimmed, input, DNS_SUBDOMAIN_MAX, &['-', '.']);
    if out.is_empty() || !is_dns_subdomain(&out) {
        return Err(InvalidName(input.to_string()));
    }
    Ok(out)
}

/// Woodpecker's `toLabelValue`: lowercase, dash runs of other characters, collapse `-_.` runs to
/// `-`, trim, hash-truncate to 63. An empty result is allowed.
pub fn to_label_value(input: &str) -> String {
    let lower = input.to_lowercase();
    let dashed = dash_runs(&lower, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
    });
    let collapsed = collapse_runs(&dashed, &['-', '_', '.'], |_| '-');
    let trimmed = collapsed.trim_matches(['-', '_', '.']);
    let out = truncate_with_hash(trimmed, input, DNS_LABEL_MAX, &['-', '_', '.']);
    if is_label_value(&out) { out } else { String::new() }
}

/// Woodpecker's `getHostnameOrEmpty`: a DNS label for the pod hostname, or `""`.
pub fn hostname(name: &str) -> String {
    let base = match to_dns_name(name) {
        Ok(n) if !n.is_empty() => n,
        _ => name.to_lowercase(),
    };
    let dashed = base.replace('.', "-");
    let cut = &dashed[..floor_char_boundary(&dashed, DNS_LABEL_MAX)];
    let out = cut.trim_matches('-');
    if is_dns_label(out) {
        out.to_string()
    } else {
        String::new()
    }
}

/// Turns an object name (a DNS subdomain) into a DNS label, for names that must be labels
/// (containers, pod volumes): dots become dashes and long names are hash-truncated to 63.
/// Valid labels come back unchanged. (Woodpecker uses the subdomain as is, which the apiserver
/// rejects when it has dots or more than 63 characters.)
pub fn to_dns_label(name: &str) -> String {
    if is_dns_label(name) {
        return name.to_string();
    }
    let dashed = name.replace('.', "-");
    truncate_with_hash(dashed.trim_matches('-'), name, DNS_LABEL_MAX, &['-'])
}

/// A DNS label that always carries the hash of `name`: `<label form, cut to 46>-<hash>`. Used
/// when two different names would otherwise share one label form (`a.b` and `a-b`).
pub fn hashed_label(name: &str) -> String {
    let base = to_dns_label(name);
    let cut = &base[..floor_char_boundary(&base, DNS_LABEL_MAX - 17)];
    format!("{}-{}", cut.trim_end_matches('-'), short_hash(name))
}

/// The step's pod name: `wp-<uuid>`, or `wp-svc-<uuid>-<name>` for services.
pub fn pod_name(step: &Step) -> Result<String, InvalidName> {
    if step.is_service() {
        to_dns_name(&format!("wp-svc-{}-{}", step.uuid, step.name))
    } else {
        to_dns_name(&format!("wp-{}", step.uuid))
    }
}

/// The main container's name: the pod name when it is a valid DNS label (always for ordinary
/// steps), otherwise its label form. The lifecycle uses it for the log stream.
pub fn container_name(pod_name: &str) -> String {
    to_dns_label(pod_name)
}

/// The permission init container's name, `init-<container>`, kept within 63 characters.
pub fn init_container_name(container: &str) -> String {
    to_dns_label(&format!("init-{container}"))
}

/// The step Secret: `<pod>-step-secret` (hash-truncated to 253 if ever needed).
pub fn step_secret_name(pod_name: &str) -> String {
    let name = format!("{pod_name}-step-secret");
    truncate_with_hash(&name, &name, DNS_SUBDOMAIN_MAX, &['-', '.'])
}

/// The registry pull Secret: `wp-<uuid>`, also for service steps.
pub fn registry_secret_name(step: &Step) -> Result<String, InvalidName> {
    to_dns_name(&format!("wp-{}", step.uuid))
}

/// The headless Service (and pod subdomain) of a workflow: `wp-hsvc-<task>`.
pub fn headless_service_name(task: &str) -> Result<String, InvalidName> {
    to_dns_name(&format!("wp-hsvc-{task}"))
}

/// The claim name of a volume entry `name:path[:mode]`: `toDNSName(name)`.
pub fn volume_claim_name(entry: &str) -> Result<String, InvalidName> {
    to_dns_name(entry.split(':').next().unwrap_or_default())
}

/// The mount path of a volume entry: the 2nd `:` part, or the whole entry.
pub fn volume_mount_path(entry: &str) -> &str {
    entry.split(':').nth(1).unwrap_or(entry)
}

/// The value of the task label: the task verbatim (as Woodpecker), or its label form when the
/// task is not a valid label value (Woodpecker would fail to create the pod).
pub fn task_label_value(task: &str) -> String {
    if is_label_value(task) {
        task.to_string()
    } else {
        to_label_value(task)
    }
}

/// The namespace of a step: `NAMESPACE`, or lowercase `<NAMESPACE>-<org id>` per organisation.
pub fn namespace(base: &str, per_org: bool, org_id: i64) -> String {
    if per_org {
        format!("{base}-{org_id}").to_lowercase()
    } else {
        base.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_name_examples_from_the_spec() {
        for (input, want) in [
            ("ABC..DEF", "abc.def"),
            ("0.-a", "0.a"),
            ("a.-.-b", "a.b"),
            ("build & deploy", "build-deploy"),
            ("hello🚀world", "hello-world"),
            ("-.-test-.-", "test"),
            ("wp-01HE8BEBCTABR3KGK0QJ36D2ME", "wp-01he8bebctabr3kgk0qj36d2me"),
            ("wp_01he_42_default", "wp-01he-42-default"),
            ("wp-hsvc-invalid_task_uuid!", "wp-hsvc-invalid-task-uuid"),
        ] {
            assert_eq!(to_dns_name(input).as_deref(), Ok(want), "{input}");
        }
        for bad in ["!!!", "...", "---", ""] {
            assert!(to_dns_name(bad).is_err(), "{bad:?} must fail");
        }
    }

    #[test]
    fn dns_name_hash_truncation() {
        let long = "a".repeat(300);
        let got = to_dns_name(&long).unwrap();
        assert_eq!(got.len(), 253);
        assert_eq!(&got[..237], format!("{}-", "a".repeat(236)));
        assert_eq!(&got[237..], &short_hash(&long));
        // The hash is of the original input, so inputs that sanitise alike still differ.
        let other = format!("{}!", "a".repeat(300));
        assert_ne!(to_dns_name(&other).unwrap(), got);
        // Trailing separators at the cut are stripped before the hash.
        let dotted = format!("{}.{}", "b".repeat(235), "c".repeat(40));
        let got = to_dns_name(&dotted).unwrap();
        assert_eq!(got, format!("{}-{}", "b".repeat(235), short_hash(&dotted)));
        assert_eq!(short_hash(""), "e3b0c44298fc1c14");
    }

    #[test]
    fn label_value_examples() {
        for (input, want) in [
            ("Build & Deploy (staging)", "build-deploy-staging"),
            ("run_tests", "run_tests"),
            ("ABC..DEF", "abc-def"),
            (".build.image", "build.image"),
            ("!!!", ""),
            ("a__b", "a-b"),
        ] {
            assert_eq!(to_label_value(input), want, "{input}");
        }
        let long = "x".repeat(100);
        let got = to_label_value(&long);
        assert_eq!(got.len(), 63);
        assert_eq!(got, format!("{}-{}", "x".repeat(46), short_hash(&long)));
    }

    #[test]
    fn hostname_examples() {
        for (input, want) in [
            ("Update repos", "update-repos"),
            ("MY_STEP", "my-step"),
            ("Build 🚀", "build"),
            ("!!!", ""),
            ("a.b", "a-b"),
        ] {
            assert_eq!(hostname(input), want, "{input}");
        }
        assert_eq!(hostname(&"h".repeat(80)).len(), 63);
    }

    #[test]
    fn object_names() {
        let mut step = Step {
            uuid: "01HE8BEBCTABR3KGK0QJ36D2ME".into(),
            name: "awesome_service".into(),
            ..Default::default()
        };
        assert_eq!(pod_name(&step).unwrap(), "wp-01he8bebctabr3kgk0qj36d2me");
        step.type_ = "service".into();
        let pod = pod_name(&step).unwrap();
        assert_eq!(pod, "wp-svc-01he8bebctabr3kgk0qj36d2me-awesome-service");
        assert_eq!(registry_secret_name(&step).unwrap(), "wp-01he8bebctabr3kgk0qj36d2me");
        assert_eq!(step_secret_name(&pod), format!("{pod}-step-secret"));
        assert_eq!(headless_service_name("11301").unwrap(), "wp-hsvc-11301");
        assert_eq!(
            volume_claim_name("wp_01he_42_default:/woodpecker").unwrap(),
            "wp-01he-42-default"
        );
        assert_eq!(volume_mount_path("cache:/cache:ro"), "/cache");
        assert_eq!(volume_mount_path("/only/path"), "/only/path");
        assert_eq!(namespace("WoodPecker", true, 42), "woodpecker-42");
        assert_eq!(namespace("woodpecker", false, 42), "woodpecker");
    }

    #[test]
    fn container_names_stay_valid_labels() {
        assert_eq!(
            container_name("wp-01he8bebctabr3kgk0qj36d2me"),
            "wp-01he8bebctabr3kgk0qj36d2me"
        );
        let dotted = "wp-svc-01he8bebctabr3kgk0qj36d2me-db.primary";
        assert_eq!(container_name(dotted), "wp-svc-01he8bebctabr3kgk0qj36d2me-db-primary");
        let long = format!("wp-svc-01he8bebctabr3kgk0qj36d2me-{}", "s".repeat(40));
        let c = container_name(&long);
        assert!(is_dns_label(&c) && c.len() == 63, "{c}");
        assert!(is_dns_label(&init_container_name(&c)));
    }

    #[test]
    fn validators() {
        assert!(is_dns_label("a-1") && !is_dns_label("a.b") && !is_dns_label("-a") && !is_dns_label("A"));
        assert!(!is_dns_label(&"a".repeat(64)) && is_dns_label(&"a".repeat(63)));
        assert!(is_dns_subdomain("a.b-c.d") && !is_dns_subdomain("a..b") && !is_dns_subdomain("a.-b"));
        assert!(is_label_value("") && is_label_value("A_b.C") && !is_label_value("a b") && !is_label_value("_a"));
    }

    #[test]
    fn qualified_names() {
        for ok in [
            "app",
            "example.com/team",
            "woodpecker-ci.org/task-uuid",
            "a_b.c-D",
            "kubernetes.io/arch",
        ] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/x",
            "a/",
            "Example.com/x",
            "a/b/c",
            "-a",
            "a b",
            &"x".repeat(64),
            "ex_ample.com/a",
        ] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
        let m = |k: &str, v: &str| std::collections::BTreeMap::from([(k.to_string(), v.to_string())]);
        assert_eq!(check_keys_values(&m("a", "b c"), false), None);
        assert!(
            check_keys_values(&m("a", "b c"), true)
                .unwrap()
                .contains("not a valid label value")
        );
        assert!(
            check_keys_values(&m("a b", "c"), false)
                .unwrap()
                .contains("not a valid key")
        );
    }

    #[test]
    fn hashed_labels_differ_for_names_that_label_alike() {
        assert_eq!(to_dns_label("a.b"), to_dns_label("a-b"));
        assert_ne!(hashed_label("a.b"), hashed_label("a-b"));
        assert!(is_dns_label(&hashed_label("a.b")) && hashed_label("a.b").starts_with("a-b-"));
        assert!(is_dns_label(&hashed_label(&"x".repeat(300))));
    }

    #[test]
    fn task_label_values() {
        assert_eq!(task_label_value("11301"), "11301");
        assert_eq!(task_label_value("invalid task!"), "invalid-task");
    }
}
