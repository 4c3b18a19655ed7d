//! Pod and container security contexts from the agent options and the step's
//! `securityContext` (Woodpecker's `podSecurityContext`/`containerSecurityContext`), with the
//! root guards applied consistently and combinations the apiserver rejects avoided. Pure.

use serde_json::{Map, Value, json};

use super::options::{Options, PssLevel};
use super::step_options::{Profile, SecurityContext};

fn profile(p: &Option<Profile>) -> Option<Value> {
    let p = p.as_ref().filter(|p| !p.type_.is_empty())?;
    let mut m = Map::new();
    m.insert("type".into(), p.type_.clone().into());
    if !p.localhost_profile.is_empty() {
        m.insert("localhostProfile".into(), p.localhost_profile.clone().into());
    }
    Some(Value::Object(m))
}

/// The pod `securityContext`, or `None` when nothing is set. `allow_root` is true for privileged
/// steps and for `hostUsers: false` (a user namespace makes root harmless).
pub fn pod_security_context(
    opts: &Options,
    sc: Option<&SecurityContext>,
    allow_root: bool,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    let mut run_as_non_root = opts.secctx_nonroot.then_some(true);
    let mut fs_group = opts.fs_group;
    let (mut user, mut group, mut seccomp, mut apparmor, mut policy) = (None, None, None, None, None);
    // The agent-wide ids (RUN_AS_USER, RUN_AS_GROUP) unless the step sets its own.
    let (default_user, default_group) = (opts.run_as_user, opts.run_as_group);
    if let Some(sc) = sc {
        let mut root_guard = |field: &str, v: Option<i64>| match v {
            Some(0) if !allow_root => {
                warnings.push(format!(
                    "backend_options.kubernetes.securityContext.{field}: 0 (root) needs a privileged step \
                     or hostUsers: false, ignored"
                ));
                None
            }
            other => other,
        };
        user = root_guard("runAsUser", sc.run_as_user);
        group = root_guard("runAsGroup", sc.run_as_group);
        // Woodpecker copies the step fsGroup unguarded (its root guard is overwritten right
        // after); we apply the guard it meant to.
        if sc.fs_group.is_some() {
            fs_group = root_guard("fsGroup", sc.fs_group).or(opts.fs_group);
        }
        if !opts.secctx_nonroot {
            run_as_non_root = sc.run_as_non_root;
        }
        seccomp = profile(&sc.seccomp_profile);
        apparmor = profile(&sc.apparmor_profile);
        policy = sc.fs_group_change_policy.clone();
    }
    // A privileged step (or one in a user namespace) is left to run as its image says.
    if !allow_root {
        user = user.or(default_user);
        group = group.or(default_group);
    }
    if run_as_non_root.is_none()
        && user.is_none()
        && group.is_none()
        && fs_group.is_none()
        && seccomp.is_none()
        && apparmor.is_none()
    {
        return None;
    }
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("runAsUser", user.map(Value::from));
    put("runAsGroup", group.map(Value::from));
    put("runAsNonRoot", run_as_non_root.map(Value::from));
    put("fsGroup", fs_group.map(Value::from));
    put("fsGroupChangePolicy", policy.map(Value::from));
    put("seccompProfile", seccomp);
    put("appArmorProfile", apparmor);
    Some(Value::Object(m))
}

/// The main container's `securityContext`, or `None`.
pub fn container_security_context(
    privileged_step: bool,
    sc: Option<&SecurityContext>,
    warnings: &mut Vec<String>,
) -> Option<Value> {
    let path = "backend_options.kubernetes.securityContext";
    let want_priv = sc.and_then(|s| s.privileged);
    if want_priv == Some(true) && !privileged_step {
        warnings.push(format!(
            "{path}.privileged: only a privileged step can be privileged, ignored"
        ));
    }
    let privileged = privileged_step && want_priv != Some(false);
    let mut m = Map::new();
    if privileged {
        m.insert("privileged".into(), true.into());
    }
    match sc.and_then(|s| s.allow_privilege_escalation) {
        Some(false) if privileged => warnings.push(format!(
            "{path}.allowPrivilegeEscalation: false cannot be combined with a privileged container \
             (the apiserver rejects it), ignored"
        )),
        Some(false) => {
            m.insert("allowPrivilegeEscalation".into(), false.into());
        }
        Some(true) => {
            warnings.push(format!(
                "{path}.allowPrivilegeEscalation: can only be set to false, ignored"
            ));
        }
        None => {}
    }
    if let Some(sc) = sc.filter(|s| !s.capabilities_drop.is_empty()) {
        m.insert("capabilities".into(), json!({"drop": sc.capabilities_drop}));
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Pod Security "restricted" defaults (`POD_SECURITY_RESTRICTED`) for an unprivileged pod:
/// `allowPrivilegeEscalation: false` and `capabilities.drop: [ALL]` on the container, and a
/// RuntimeDefault seccomp profile on the pod unless the step chose one. Privileged containers
/// are left alone (they need a privileged namespace anyway). runAsNonRoot stays with
/// `SECCTX_NONROOT`, because most CI images run as root.
pub fn restricted_defaults(container: Option<Value>, pod: Option<Value>) -> (Option<Value>, Option<Value>) {
    let mut c = container.unwrap_or_else(|| json!({}));
    if c.get("privileged") == Some(&Value::Bool(true)) {
        return (Some(c), pod);
    }
    c["allowPrivilegeEscalation"] = false.into();
    c["capabilities"] = json!({"drop": ["ALL"]});
    let mut p = pod.unwrap_or_else(|| json!({}));
    if p.get("seccompProfile").is_none() {
        p["seccompProfile"] = json!({"type": "RuntimeDefault"});
    }
    (Some(c), Some(p))
}

/// What a step asks for that the enforced Pod Security `level` (`POD_SECURITY_ENFORCE`)
/// forbids: privileged, an `Unconfined` seccomp or AppArmor profile, and for `restricted` also
/// root (`runAsUser: 0`) or `runAsNonRoot: false`. Empty when the step may run. The agent refuses
/// such a step with these reasons in its log instead of letting the admission controller
/// reject the pod.
pub fn enforce_refusals(level: PssLevel, privileged: bool, sc: Option<&SecurityContext>) -> Vec<String> {
    let mut out = Vec::new();
    let path = "backend_options.kubernetes.securityContext";
    if privileged || sc.and_then(|s| s.privileged) == Some(true) {
        out.push("privileged: true (a privileged container)".to_string());
    }
    let Some(sc) = sc else { return out };
    for (key, p) in [
        ("seccompProfile", &sc.seccomp_profile),
        ("apparmorProfile", &sc.apparmor_profile),
    ] {
        if p.as_ref().is_some_and(|p| p.type_ == "Unconfined") {
            out.push(format!("{path}.{key}.type: Unconfined"));
        }
    }
    if level == PssLevel::Restricted {
        if sc.run_as_user == Some(0) {
            out.push(format!("{path}.runAsUser: 0 (root)"));
        }
        if sc.run_as_non_root == Some(false) {
            out.push(format!("{path}.runAsNonRoot: false"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_fs() -> Options {
        Options {
            fs_group: None,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_give_fs_group_1000_only() {
        let mut w = Vec::new();
        assert_eq!(
            pod_security_context(&Options::default(), None, false, &mut w),
            Some(json!({"fsGroup": 1000}))
        );
        assert_eq!(pod_security_context(&no_fs(), None, false, &mut w), None);
        let sc = SecurityContext {
            fs_group_change_policy: Some("OnRootMismatch".into()),
            ..Default::default()
        };
        assert_eq!(
            pod_security_context(&no_fs(), Some(&sc), false, &mut w),
            None,
            "policy alone writes nothing"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn root_needs_privileged_or_user_namespace() {
        let sc = SecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            fs_group: Some(0),
            ..Default::default()
        };
        let mut w = Vec::new();
        assert_eq!(
            pod_security_context(&Options::default(), Some(&sc), false, &mut w),
            Some(json!({"fsGroup": 1000}))
        );
        assert_eq!(w.len(), 3, "{w:?}");
        let mut w = Vec::new();
        let got = pod_security_context(&Options::default(), Some(&sc), true, &mut w);
        assert_eq!(got, Some(json!({"runAsUser": 0, "runAsGroup": 0, "fsGroup": 0})));
        assert!(w.is_empty());
    }

    #[test]
    fn nonroot_is_forced_and_profiles_pass_through() {
        let opts = Options {
            secctx_nonroot: true,
            ..no_fs()
        };
        let sc = SecurityContext {
            run_as_non_root: Some(false),
            run_as_user: Some(1001),
            fs_group_change_policy: Some("Always".into()),
            seccomp_profile: Some(Profile {
                type_: "RuntimeDefault".into(),
                localhost_profile: String::new(),
            }),
            apparmor_profile: Some(Profile {
                type_: "Localhost".into(),
                localhost_profile: "k8s-apparmor".into(),
            }),
            ..Default::default()
        };
        let got = pod_security_context(&opts, Some(&sc), false, &mut Vec::new()).unwrap();
        assert_eq!(
            got,
            json!({"runAsUser": 1001, "runAsNonRoot": true, "fsGroupChangePolicy": "Always",
                   "seccompProfile": {"type": "RuntimeDefault"},
                   "appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor"}})
        );
        let step_only = pod_security_context(&no_fs(), Some(&sc), false, &mut Vec::new()).unwrap();
        assert_eq!(step_only["runAsNonRoot"], false);
    }

    #[test]
    fn restricted_defaults_fill_in_and_keep_choices() {
        let (c, p) = restricted_defaults(None, None);
        assert_eq!(
            c,
            Some(json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}))
        );
        assert_eq!(p, Some(json!({"seccompProfile": {"type": "RuntimeDefault"}})));
        let local = json!({"fsGroup": 1000, "seccompProfile": {"type": "Localhost", "localhostProfile": "x"}});
        let (c, p) = restricted_defaults(
            Some(json!({"capabilities": {"drop": ["NET_RAW"]}})),
            Some(local.clone()),
        );
        assert_eq!(c.unwrap()["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(p, Some(local));
        let privileged = json!({"privileged": true});
        assert_eq!(
            restricted_defaults(Some(privileged.clone()), None),
            (Some(privileged), None)
        );
    }

    #[test]
    fn container_context_rules() {
        let mut w = Vec::new();
        assert_eq!(container_security_context(false, None, &mut w), None);
        assert_eq!(
            container_security_context(true, None, &mut w),
            Some(json!({"privileged": true}))
        );
        let opt_out = SecurityContext {
            privileged: Some(false),
            ..Default::default()
        };
        assert_eq!(container_security_context(true, Some(&opt_out), &mut w), None);
        let escalate = SecurityContext {
            privileged: Some(true),
            ..Default::default()
        };
        assert_eq!(container_security_context(false, Some(&escalate), &mut w), None);
        assert_eq!(w.len(), 1);
        let hardened = SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities_drop: vec!["ALL".into()],
            ..Default::default()
        };
        assert_eq!(
            container_security_context(false, Some(&hardened), &mut w),
            Some(json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}))
        );
        // Privileged + APE=false is rejected by the apiserver: keep privileged, drop APE, warn.
        let mut w = Vec::new();
        assert_eq!(
            container_security_context(true, Some(&hardened), &mut w),
            Some(json!({"privileged": true, "capabilities": {"drop": ["ALL"]}}))
        );
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn enforce_refuses_what_the_level_forbids() {
        let unconfined = SecurityContext {
            seccomp_profile: Some(Profile {
                type_: "Unconfined".into(),
                localhost_profile: String::new(),
            }),
            ..Default::default()
        };
        let root = SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            ..Default::default()
        };
        assert!(enforce_refusals(PssLevel::Restricted, false, None).is_empty());
        assert_eq!(
            enforce_refusals(PssLevel::Baseline, true, None),
            ["privileged: true (a privileged container)"]
        );
        assert_eq!(
            enforce_refusals(PssLevel::Baseline, false, Some(&unconfined)),
            ["backend_options.kubernetes.securityContext.seccompProfile.type: Unconfined"]
        );
        assert!(
            enforce_refusals(PssLevel::Baseline, false, Some(&root)).is_empty(),
            "baseline allows root"
        );
        assert_eq!(
            enforce_refusals(PssLevel::Restricted, false, Some(&root)),
            [
                "backend_options.kubernetes.securityContext.runAsUser: 0 (root)",
                "backend_options.kubernetes.securityContext.runAsNonRoot: false"
            ]
        );
    }
}
