//! The metadata of a local run and the `CI_*` environment it gives every step (spec §5, layer
//! 1, with `woodpecker-cli exec`'s local defaults from §6): repository and commit from the
//! local git checkout where there is one, event `manual`, numbers 0. `from_git` is the only
//! I/O (it runs `git`); `environ` is pure.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What a step learns about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// `owner/name`.
    pub repo: String,
    pub repo_url: String,
    pub clone_url: String,
    pub default_branch: String,
    pub forge_url: String,
    pub commit_sha: String,
    pub commit_ref: String,
    pub commit_branch: String,
    pub commit_tag: String,
    pub commit_message: String,
    pub commit_author: String,
    pub commit_author_email: String,
    pub commit_timestamp: i64,
    pub event: String,
    pub pipeline_number: u64,
    pub pipeline_created: i64,
    /// `os/arch` of the machine the steps run on.
    pub platform: String,
    pub machine: String,
    /// Files changed by the commit, when known (for `when: path`).
    pub changed_files: Option<Vec<String>>,
    /// The Woodpecker server's host (`when: instance`); none for `exec`.
    pub system_host: String,
    /// The cron job that started the pipeline (`when: cron`).
    pub cron: String,
    /// The deployment target (`when: environment`).
    pub deploy_to: String,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            repo: "local/repo".into(),
            repo_url: String::new(),
            clone_url: String::new(),
            default_branch: "main".into(),
            forge_url: String::new(),
            commit_sha: String::new(),
            commit_ref: "refs/heads/main".into(),
            commit_branch: "main".into(),
            commit_tag: String::new(),
            commit_message: String::new(),
            commit_author: String::new(),
            commit_author_email: String::new(),
            commit_timestamp: 0,
            event: "manual".into(),
            pipeline_number: 0,
            pipeline_created: 0,
            platform: default_platform(),
            machine: String::new(),
            changed_files: None,
            system_host: String::new(),
            cron: String::new(),
            deploy_to: String::new(),
        }
    }
}

/// This machine's `os/arch` in Go's names.
pub fn default_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Metadata {
    /// Fills repository and commit facts from the git checkout around `dir`, when there is one
    /// and `git` is installed; keeps the defaults otherwise.
    pub fn from_git(dir: &Path) -> Metadata {
        let mut m = Metadata::default();
        let Some(top) = git(dir, &["rev-parse", "--show-toplevel"]) else {
            return m;
        };
        if let Some(name) = Path::new(&top).file_name() {
            m.repo = format!("local/{}", name.to_string_lossy());
        }
        if let Some(sha) = git(dir, &["rev-parse", "HEAD"]) {
            m.commit_sha = sha;
        }
        if let Some(branch) = git(dir, &["symbolic-ref", "--short", "-q", "HEAD"]) {
            m.commit_ref = format!("refs/heads/{branch}");
            m.commit_branch = branch;
        }
        if let Some(log) = git(dir, &["log", "-1", "--format=%an%n%ae%n%ct%n%s"]) {
            let mut lines = log.lines();
            m.commit_author = lines.next().unwrap_or_default().to_owned();
            m.commit_author_email = lines.next().unwrap_or_default().to_owned();
            m.commit_timestamp = lines.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            m.commit_message = lines.collect::<Vec<_>>().join("\n");
        }
        // A remote on this machine's disk (a path, `file://`) cannot be cloned from inside a
        // pod, so it is no clone URL: exec then skips the clone and says so.
        if let Some(url) = git(dir, &["config", "--get", "remote.origin.url"])
            && reachable_from_a_pod(&url)
        {
            m.apply_remote(&url);
        }
        m
    }

    /// Takes the repository name and URLs from a clone URL.
    pub fn apply_remote(&mut self, url: &str) {
        self.clone_url = url.to_owned();
        let path = url.trim_end_matches('/').trim_end_matches(".git");
        let mut parts = path.rsplit(['/', ':']);
        if let (Some(name), Some(owner)) = (parts.next(), parts.next())
            && !name.is_empty()
            && !owner.is_empty()
        {
            self.repo = format!("{owner}/{name}");
        }
        if url.starts_with("http") {
            self.repo_url = path.to_owned();
        }
    }

    /// The compile-time `CI_*` variables of a workflow; empty values are left out.
    pub fn environ(&self, workflow_name: &str, workflow_number: usize, workspace: &str) -> BTreeMap<String, String> {
        let (owner, name) = self.repo.split_once('/').unwrap_or(("", &self.repo));
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            if !v.is_empty() {
                env.insert(k.to_owned(), v);
            }
        };
        set("CI", "woodpecker".into());
        set("CI_SYSTEM_NAME", "woodpecker".into());
        set("CI_SYSTEM_URL", "https://github.com/woodpecker-ci/woodpecker".into());
        set("CI_SYSTEM_PLATFORM", self.platform.clone());
        set("CI_SYSTEM_VERSION", env!("CARGO_PKG_VERSION").into());
        set("CI_MACHINE", self.machine.clone());
        set("CI_FORGE_URL", self.forge_url.clone());
        set("CI_REPO", self.repo.clone());
        set("CI_REPO_OWNER", owner.into());
        set("CI_REPO_NAME", name.into());
        set("CI_REPO_URL", self.repo_url.clone());
        set("CI_REPO_CLONE_URL", self.clone_url.clone());
        set("CI_REPO_DEFAULT_BRANCH", self.default_branch.clone());
        set("CI_REPO_PRIVATE", "false".into());
        set("CI_REPO_TRUSTED_NETWORK", "false".into());
        set("CI_REPO_TRUSTED_VOLUMES", "false".into());
        set("CI_REPO_TRUSTED_SECURITY", "false".into());
        set("CI_PIPELINE_NUMBER", self.pipeline_number.to_string());
        set("CI_PIPELINE_PARENT", "0".into());
        set("CI_PIPELINE_EVENT", self.event.clone());
        set("CI_PIPELINE_DEPLOY_TARGET", self.deploy_to.clone());
        set("CI_SYSTEM_HOST", self.system_host.clone());
        set("CI_PIPELINE_CREATED", self.pipeline_created.to_string());
        set("CI_PIPELINE_STARTED", self.pipeline_created.to_string());
        if let Some(files) = &self.changed_files
            && files.len() <= 500
        {
            set("CI_PIPELINE_FILES", serde_json::to_string(files).unwrap_or_default());
        }
        set("CI_WORKFLOW_NAME", workflow_name.into());
        set("CI_WORKFLOW_NUMBER", workflow_number.to_string());
        set("CI_STEP_NUMBER", "0".into());
        set("CI_COMMIT_SHA", self.commit_sha.clone());
        set("CI_COMMIT_REF", self.commit_ref.clone());
        set("CI_COMMIT_REFSPEC", String::new());
        set("CI_COMMIT_BRANCH", self.commit_branch.clone());
        set("CI_COMMIT_TAG", self.commit_tag.clone());
        set("CI_COMMIT_MESSAGE", self.commit_message.clone());
        set("CI_COMMIT_TIMESTAMP", self.commit_timestamp.to_string());
        set("CI_COMMIT_AUTHOR", self.commit_author.clone());
        set("CI_COMMIT_AUTHOR_EMAIL", self.commit_author_email.clone());
        set("CI_PREV_PIPELINE_NUMBER", "0".into());
        set("CI_WORKSPACE", workspace.into());
        env
    }
}

/// Whether a git remote names a network location (`https://`, `ssh://`, `git://`,
/// `user@host:path`) rather than a path on this machine.
fn reachable_from_a_pod(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, _)) => scheme != "file",
        None => url
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@') || (host.contains('.') && !host.contains('/'))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environ_has_local_defaults_and_skips_empties() {
        let m = Metadata {
            commit_sha: "abc".into(),
            ..Default::default()
        };
        let env = m.environ("build", 1, "/woodpecker/src");
        assert_eq!(env["CI"], "woodpecker");
        assert_eq!(env["CI_PIPELINE_EVENT"], "manual");
        assert_eq!(env["CI_COMMIT_BRANCH"], "main");
        assert_eq!(env["CI_REPO_OWNER"], "local");
        assert_eq!(env["CI_WORKFLOW_NAME"], "build");
        assert_eq!(env["CI_WORKSPACE"], "/woodpecker/src");
        assert_eq!(env["CI_COMMIT_SHA"], "abc");
        assert!(!env.contains_key("CI_COMMIT_TAG"));
        assert!(!env.contains_key("CI_PIPELINE_FILES"));
    }

    #[test]
    fn only_network_remotes_are_clone_urls() {
        for url in [
            "https://codeberg.org/o/p.git",
            "ssh://git@host/o/p",
            "git@example.com:team/tool.git",
            "git://h/o/p",
        ] {
            assert!(reachable_from_a_pod(url), "{url}");
        }
        for url in ["/work/main", "../other", "file:///srv/repo.git", "./x:y"] {
            assert!(!reachable_from_a_pod(url), "{url}");
        }
    }

    #[test]
    fn remote_urls_give_the_repo_name() {
        let mut m = Metadata::default();
        m.apply_remote("https://codeberg.org/owner/project.git");
        assert_eq!(
            (m.repo.as_str(), m.repo_url.as_str()),
            ("owner/project", "https://codeberg.org/owner/project")
        );
        m.apply_remote("git@example.com:team/tool.git");
        assert_eq!(m.repo, "team/tool");
    }
}
