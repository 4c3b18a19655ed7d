//! The variables the runtime adds to a step just before it starts (spec §5, layer 3):
//! `CI_PIPELINE_STATUS`, `CI_PIPELINE_STARTED`, `CI_STEP_*`, and for plugins the Drone
//! compatibility copies. Pure: takes the step's environment and returns it extended.

use crate::backend::Environment;

/// Drone's name <- Woodpecker's name, copied when the Woodpecker variable is set
/// (`pipeline/frontend/metadata/drone_compatibility.go`).
const DRONE_COPIES: &[(&str, &str)] = &[
    ("DRONE_BRANCH", "CI_COMMIT_BRANCH"),
    ("DRONE_PULL_REQUEST", "CI_COMMIT_PULL_REQUEST"),
    ("DRONE_TAG", "CI_COMMIT_TAG"),
    ("DRONE_SOURCE_BRANCH", "CI_COMMIT_SOURCE_BRANCH"),
    ("DRONE_TARGET_BRANCH", "CI_COMMIT_TARGET_BRANCH"),
    ("DRONE_BUILD_NUMBER", "CI_PIPELINE_NUMBER"),
    ("DRONE_BUILD_PARENT", "CI_PIPELINE_PARENT"),
    ("DRONE_BUILD_EVENT", "CI_PIPELINE_EVENT"),
    ("DRONE_BUILD_LINK", "CI_PIPELINE_URL"),
    ("DRONE_BUILD_CREATED", "CI_PIPELINE_CREATED"),
    ("DRONE_BUILD_STARTED", "CI_PIPELINE_STARTED"),
    ("DRONE_COMMIT", "CI_COMMIT_SHA"),
    ("DRONE_COMMIT_SHA", "CI_COMMIT_SHA"),
    ("DRONE_COMMIT_BEFORE", "CI_PREV_COMMIT_SHA"),
    ("DRONE_COMMIT_REF", "CI_COMMIT_REF"),
    ("DRONE_COMMIT_BRANCH", "CI_COMMIT_BRANCH"),
    ("DRONE_COMMIT_LINK", "CI_PIPELINE_FORGE_URL"),
    ("DRONE_COMMIT_MESSAGE", "CI_COMMIT_MESSAGE"),
    ("DRONE_COMMIT_AUTHOR", "CI_COMMIT_AUTHOR"),
    ("DRONE_COMMIT_AUTHOR_NAME", "CI_COMMIT_AUTHOR"),
    ("DRONE_COMMIT_AUTHOR_EMAIL", "CI_COMMIT_AUTHOR_EMAIL"),
    ("DRONE_COMMIT_AUTHOR_AVATAR", "CI_COMMIT_AUTHOR_AVATAR"),
    ("DRONE_REPO", "CI_REPO"),
    ("DRONE_REPO_OWNER", "CI_REPO_OWNER"),
    ("DRONE_REPO_NAME", "CI_REPO_NAME"),
    ("DRONE_REPO_LINK", "CI_REPO_URL"),
    ("DRONE_REPO_BRANCH", "CI_REPO_DEFAULT_BRANCH"),
    ("DRONE_REPO_PRIVATE", "CI_REPO_PRIVATE"),
    ("DRONE_REMOTE_URL", "CI_REPO_CLONE_URL"),
    ("DRONE_GIT_HTTP_URL", "CI_REPO_CLONE_URL"),
    ("DRONE_SYSTEM_HOST", "CI_SYSTEM_HOST"),
    ("DRONE_STEP_NUMBER", "CI_STEP_NUMBER"),
];

/// Adds the runtime variables. `failed` is the workflow's error state when the step starts;
/// times are unix seconds.
pub fn add_runtime_env(
    env: &mut Environment,
    step_name: &str,
    step_type: &str,
    failed: bool,
    workflow_started: i64,
    step_started: i64,
) {
    let status = if failed { "failure" } else { "success" };
    env.insert("CI_PIPELINE_STATUS".into(), status.into());
    env.insert("CI_PIPELINE_STARTED".into(), workflow_started.to_string());
    env.insert("CI_STEP_STARTED".into(), step_started.to_string());
    env.insert("CI_STEP_TYPE".into(), step_type.into());
    env.insert("CI_STEP_NAME".into(), step_name.into());
    if step_type == "plugin" {
        add_drone_env(env);
    }
}

fn add_drone_env(env: &mut Environment) {
    for (drone, ours) in DRONE_COPIES {
        if let Some(v) = env.get(ours).filter(|v| !v.is_empty()).cloned() {
            env.insert((*drone).into(), v);
        }
    }
    let pr = env.get("CI_COMMIT_PULL_REQUEST").filter(|v| !v.is_empty()).cloned();
    env.insert(
        "PULLREQUEST_DRONE_PULL_REQUEST".into(),
        pr.unwrap_or_else(|| "0".into()),
    );
    env.insert("DRONE_BUILD_STATUS".into(), "success".into());
    env.insert("DRONE_REPO_SCM".into(), "git".into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_step_gets_ci_vars_only() {
        let mut env = Environment::from([("CI_COMMIT_BRANCH".to_string(), "main".to_string())]);
        add_runtime_env(&mut env, "build", "commands", true, 100, 105);
        assert_eq!(env["CI_PIPELINE_STATUS"], "failure");
        assert_eq!(env["CI_PIPELINE_STARTED"], "100");
        assert_eq!(env["CI_STEP_STARTED"], "105");
        assert_eq!(env["CI_STEP_TYPE"], "commands");
        assert_eq!(env["CI_STEP_NAME"], "build");
        assert!(!env.contains_key("DRONE_BRANCH"));
    }

    #[test]
    fn plugin_step_gets_drone_copies() {
        let mut env = Environment::from([
            ("CI_COMMIT_BRANCH".to_string(), "main".to_string()),
            ("CI_COMMIT_SHA".to_string(), "abc".to_string()),
        ]);
        add_runtime_env(&mut env, "publish", "plugin", false, 1, 2);
        assert_eq!(env["DRONE_BRANCH"], "main");
        assert_eq!(env["DRONE_COMMIT"], "abc");
        assert_eq!(env["DRONE_BUILD_STARTED"], "1");
        assert_eq!(env["PULLREQUEST_DRONE_PULL_REQUEST"], "0");
        assert_eq!(env["DRONE_REPO_SCM"], "git");
        assert!(!env.contains_key("DRONE_TAG"));
    }
}
