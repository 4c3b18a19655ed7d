//! Unit tests for reading and merging kubeconfig files.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::testenv::TestEnv;

const A: &str = "
apiVersion: v1
kind: Config
current-context: a-ctx
clusters:
- name: shared
  cluster: {server: 'https://a.example:6443'}
- name: only-a
  cluster: {server: 'https://only-a:6443'}
users:
- name: shared-user
  user: {token: from-a}
contexts:
- name: a-ctx
  context: {cluster: shared, user: shared-user, namespace: a-ns}
";

const B: &str = "
current-context: b-ctx
clusters:
- name: shared
  cluster: {server: 'https://b.example:6443', insecure-skip-tls-verify: true}
- name: only-b
  cluster: {server: 'https://only-b:6443'}
users:
- name: shared-user
  user: {username: from-b, password: pw}
contexts:
- name: b-ctx
  context: {cluster: only-b}
";

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|t| name(t).to_owned()).collect()
}

#[test]
fn parses_fields_and_records_origin() {
    let kc = parse(A.as_bytes(), Path::new("/k/a")).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("a-ctx"));
    assert_eq!(kc.clusters[0].cluster.server.as_deref(), Some("https://a.example:6443"));
    assert_eq!(kc.clusters[0].origin, PathBuf::from("/k/a"));
    assert_eq!(kc.users[0].user.token.as_ref().unwrap().expose(), "from-a");
    assert_eq!(kc.users[0].origin, PathBuf::from("/k/a"));
    assert_eq!(kc.contexts[0].context.namespace.as_deref(), Some("a-ns"));
    assert_eq!(kc.contexts[0].origin, PathBuf::from("/k/a"));
}

#[test]
fn empty_file_and_null_lists_are_empty() {
    let kc = parse(b"", Path::new("/k/empty")).unwrap();
    assert!(kc.clusters.is_empty() && kc.current_context.is_none());
    let kc = parse(
        b"\xef\xbb\xbfapiVersion: v1\nclusters: null\nusers:\ncontexts: []\n",
        Path::new("/k/nulls"),
    )
    .unwrap();
    assert!(kc.clusters.is_empty() && kc.users.is_empty() && kc.contexts.is_empty());
    let kc = parse(b"users:\n- name: u\n  user: null\n", Path::new("/k/u")).unwrap();
    assert!(kc.users[0].user.token.is_none());
}

#[test]
fn bad_yaml_names_the_file() {
    let err = parse(b"clusters: {not: a list}", Path::new("/k/bad")).unwrap_err();
    assert!(matches!(&err, ConfigError::ParseKubeconfig { path, .. } if path == Path::new("/k/bad")));
    assert_eq!(err.to_string(), "kubeconfig `/k/bad` is not a valid kubeconfig");
    assert!(std::error::Error::source(&err).is_some());
    let err = parse(b"current-context: [", Path::new("/k/broken")).unwrap_err();
    assert!(err.to_string().contains("/k/broken"));
}

#[test]
fn merge_first_file_wins_per_name_and_for_current_context() {
    let mut kc = parse(A.as_bytes(), Path::new("/k/a")).unwrap();
    kc.merge(parse(B.as_bytes(), Path::new("/k/b")).unwrap());
    assert_eq!(kc.current_context.as_deref(), Some("a-ctx"));
    assert_eq!(names(&kc.clusters, |c| &c.name), ["shared", "only-a", "only-b"]);
    let shared = &kc.clusters[0];
    // The whole entry comes from the first file; its missing fields are not filled from B.
    assert_eq!(shared.cluster.server.as_deref(), Some("https://a.example:6443"));
    assert!(!shared.cluster.insecure_skip_tls_verify);
    assert_eq!(shared.origin, PathBuf::from("/k/a"));
    assert_eq!(kc.clusters[2].origin, PathBuf::from("/k/b"));
    assert_eq!(names(&kc.users, |u| &u.name), ["shared-user"]);
    assert!(kc.users[0].user.username.is_none());
    assert_eq!(names(&kc.contexts, |c| &c.name), ["a-ctx", "b-ctx"]);
}

#[test]
fn merge_takes_current_context_from_a_later_file_when_the_first_has_none() {
    let mut kc = parse(b"clusters: []", Path::new("/k/none")).unwrap();
    kc.merge(parse(B.as_bytes(), Path::new("/k/b")).unwrap());
    assert_eq!(kc.current_context.as_deref(), Some("b-ctx"));
    let mut kc = parse(b"current-context: ''", Path::new("/k/empty")).unwrap();
    kc.merge(parse(B.as_bytes(), Path::new("/k/b")).unwrap());
    assert_eq!(kc.current_context.as_deref(), Some("b-ctx"));
}

#[test]
fn kubeconfig_list_skips_missing_and_empty_entries_and_duplicates() {
    let env = TestEnv::new()
        .var("KUBECONFIG", "/k/missing::/k/a:/k/b:/k/a:")
        .home("/home/u")
        .file("/k/a", A)
        .file("/k/b", B)
        .file("/home/u/.kube/config", "current-context: home");
    let loaded = load(&env, None).unwrap().unwrap();
    assert_eq!(loaded.files, [PathBuf::from("/k/a"), PathBuf::from("/k/b")]);
    assert_eq!(loaded.config.current_context.as_deref(), Some("a-ctx"));
    assert_eq!(
        candidate_paths(&env, None),
        ["/k/missing", "/k/a", "/k/b"].map(PathBuf::from)
    );
}

#[test]
fn all_missing_is_none_but_an_explicit_missing_file_is_an_error() {
    let env = TestEnv::new().var("KUBECONFIG", "/k/x:/k/y").home("/home/u");
    assert!(load(&env, None).unwrap().is_none());
    let err = load(&env, Some(Path::new("/k/given"))).unwrap_err();
    assert_eq!(err.to_string(), "kubeconfig `/k/given` cannot be read");
}

#[test]
fn explicit_file_beats_kubeconfig_which_beats_home() {
    let env = TestEnv::new()
        .var("KUBECONFIG", "/k/b")
        .home("/home/u")
        .file("/k/a", A)
        .file("/k/b", B)
        .file("/home/u/.kube/config", "current-context: home");
    let given = load(&env, Some(Path::new("/k/a"))).unwrap().unwrap();
    assert_eq!(given.config.current_context.as_deref(), Some("a-ctx"));
    let from_var = load(&env, None).unwrap().unwrap();
    assert_eq!(from_var.config.current_context.as_deref(), Some("b-ctx"));
    let env = env.var("KUBECONFIG", "");
    let from_home = load(&env, None).unwrap().unwrap();
    assert_eq!(from_home.config.current_context.as_deref(), Some("home"));
    assert_eq!(from_home.files, [PathBuf::from("/home/u/.kube/config")]);
}

#[test]
fn an_unreadable_listed_file_is_an_error_not_a_skip() {
    struct Denied;
    impl super::Env for Denied {
        fn var(&self, name: &str) -> Option<String> {
            (name == "KUBECONFIG").then(|| "/k/locked".to_owned())
        }
        fn home_dir(&self) -> Option<PathBuf> {
            None
        }
        fn read_file(&self, _: &Path, _: u64) -> io::Result<Vec<u8>> {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "denied"))
        }
    }
    let err = load(&Denied, None).unwrap_err();
    assert!(matches!(err, ConfigError::ReadKubeconfig { .. }), "{err}");
}

#[test]
fn exec_env_debug_redacts_values() {
    let kc = parse(
        b"users:\n- name: u\n  user:\n    exec:\n      command: x\n      env: [{name: AWS_SECRET, value: s3cr3t}]\n",
        Path::new("/k/e"),
    )
    .unwrap();
    let debug = format!("{kc:?}");
    assert!(debug.contains("AWS_SECRET") && !debug.contains("s3cr3t"), "{debug}");
}

#[test]
fn a_name_defined_twice_in_one_file_is_an_error_like_kubectl() {
    for (kind, yaml) in [
        ("cluster `c`", "clusters:\n- name: c\n- name: c\n"),
        ("user `u`", "users:\n- name: u\n- name: v\n- name: u\n"),
        ("context `x`", "contexts:\n- name: x\n- name: x\n"),
    ] {
        let err = parse(yaml.as_bytes(), Path::new("/k/dup")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("kubeconfig `/k/dup`: {kind}: `name` is defined twice in this file")
        );
    }
}

#[test]
fn cluster_extensions_are_kept() {
    let kc = parse(
        b"clusters:\n- name: c\n  cluster:\n    server: https://x\n    extensions:\n    - name: client.authentication.k8s.io/exec\n      extension: {audience: ci, n: 1}\n",
        Path::new("/k/ext"),
    )
    .unwrap();
    let ext = &kc.clusters[0].cluster.extensions[0];
    assert_eq!(ext.name, EXEC_EXTENSION);
    assert_eq!(ext.extension["audience"], "ci");
    assert_eq!(ext.extension["n"], 1);
}

#[test]
fn only_the_first_yaml_document_counts_like_kubectl() {
    let kc = parse(b"current-context: a\n---\ncurrent-context: b\n", Path::new("/k/multi")).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("a"));
    let kc = parse(b"# only a comment\n", Path::new("/k/comment")).unwrap();
    assert!(kc.current_context.is_none());
}

/// libyaml is quadratic in open flow collections: 16k levels took 3.8 s (release) before the
/// nesting pass. Every shape of 100 KB is now refused at level 65, in bounded time.
#[test]
fn nesting_is_refused_early_whatever_the_shape() {
    let n = 50_000;
    let shapes = [
        (
            "unknown field, flow sequences",
            format!("foo: {}{}\n", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "unknown field, flow mappings",
            format!("foo: {}{}\n", "{a: ".repeat(n / 2), "}".repeat(n / 2)),
        ),
        (
            "clusters, flow sequences",
            format!("clusters: {}{}\n", "[".repeat(n), "]".repeat(n)),
        ),
        (
            "an extension",
            format!(
                "clusters:\n- name: a\n  cluster:\n    extensions:\n    - name: e\n      extension: {}{}\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
        ),
        ("block sequences", format!("foo:\n{}x\n", "- ".repeat(n))),
        ("unclosed", format!("foo: {}\n", "[".repeat(2 * n))),
    ];
    for (what, text) in shapes {
        let start = std::time::Instant::now();
        let err = parse(text.as_bytes(), Path::new("/k/deep")).unwrap_err();
        let elapsed = start.elapsed();
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("nests deeper than 64 levels"), "{what}: {chain}");
        assert!(
            chain.starts_with("kubeconfig `/k/deep` is not a valid kubeconfig"),
            "{what}: {chain}"
        );
        // Generous for an unoptimised build on a loaded machine; before the bound this took
        // minutes in a debug build.
        assert!(elapsed < std::time::Duration::from_secs(1), "{what}: {elapsed:?}");
    }
}

#[test]
fn a_kubeconfig_over_the_size_bound_is_refused() {
    let env = TestEnv::new().file(
        "/k/huge",
        &"#".repeat((crate::config::MAX_KUBECONFIG_BYTES + 1) as usize),
    );
    let err = load(&env, Some(Path::new("/k/huge"))).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert_eq!(
        chain,
        "kubeconfig `/k/huge` cannot be read: holds more than 16 MiB (the limit for this file)"
    );
}
