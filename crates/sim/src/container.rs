//! One container on the simulated node: start delay, configuration errors (missing secrets, for
//! real or by rule), image pulls (ErrImagePull -> ImagePullBackOff, InvalidImageName), the
//! Pulled/Created/Started events, the runner, the Killing event and the terminated state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::sync::watch;

use super::Shared;
use super::podrun::{Ctx, pause};
use super::podstatus::{Container, State};
use super::runner::{self, ContainerRun, Exit, Kill, PodFault, killed, scripted};
use super::store::{Key, random_hex};
use super::time;

/// The first secretKeyRef / secret volume that does not resolve.
fn missing_secret(shared: &Shared, pod: &Value, c: &Value) -> Option<String> {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or("");
    for e in c["env"].as_array().into_iter().flatten() {
        let r = &e["valueFrom"]["secretKeyRef"];
        if let Some(name) = r["name"].as_str() {
            if r["optional"] == true {
                continue;
            }
            let key = r["key"].as_str().unwrap_or("");
            match shared.store.get(&Key::new("secrets", ns, name)) {
                None => return Some(format!("secret \"{name}\" not found")),
                Some(s) if s["data"][key].is_null() => {
                    return Some(format!("couldn't find key {key} in Secret {ns}/{name}"));
                }
                _ => {}
            }
        }
    }
    None
}

fn image_invalid(image: &str) -> bool {
    image.is_empty() || image.contains(char::is_whitespace) || image.chars().any(|c| c.is_ascii_uppercase())
}

/// One container from ContainerCreating to terminated. `None` when it never started.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    init: bool,
    i: usize,
    c: Value,
    plan: scripted::ContainerPlan,
    mut kill: watch::Receiver<Option<Kill>>,
) -> Option<Exit> {
    let name = c["name"].as_str().unwrap_or("").to_string();
    let image = c["image"].as_str().unwrap_or("").to_string();
    let waiting = |reason: &str, message: Option<String>| {
        let reason = reason.to_string();
        move |c: &mut Container| c.state = State::Waiting { reason, message }
    };
    if init {
        ctx.set_container(true, i, waiting("PodInitializing", None));
    }
    if pause(plan.start_delay(), &mut kill).await.is_some() {
        return None;
    }
    // Configuration: missing secrets (for real, or by rule) block the start.
    let mut reported = None;
    loop {
        let problem = match plan.fault() {
            Some(PodFault::ConfigError(m)) => Some(m.clone()),
            _ => missing_secret(&ctx.shared, &ctx.pod, &c),
        };
        let Some(problem) = problem else { break };
        if reported.as_deref() != Some(problem.as_str()) {
            ctx.set_container(init, i, waiting("CreateContainerConfigError", Some(problem.clone())));
            ctx.event(true, "Failed", &format!("Error: {problem}"), Some(&name));
            reported = Some(problem);
        }
        if pause(ctx.tick(), &mut kill).await.is_some() {
            return None;
        }
    }
    // The image.
    if plan.fault() == Some(&PodFault::InvalidImageName) || image_invalid(&image) {
        let msg = format!(
            "Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format"
        );
        ctx.set_container(init, i, waiting("InvalidImageName", Some(msg.clone())));
        ctx.event(true, "InspectFailed", &msg, Some(&name));
        ctx.event(true, "Failed", "Error: InvalidImageName", Some(&name));
        let _ = killed(&mut kill).await;
        return None;
    }
    let missing: Vec<String> = ctx.pod["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .filter(|s| {
            ctx.shared
                .store
                .get(&Key::new("secrets", &ctx.key.namespace, s))
                .is_none()
        })
        .map(String::from)
        .collect();
    if !missing.is_empty() {
        let msg = format!(
            "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
            missing.join(", ")
        );
        ctx.event(true, "FailedToRetrieveImagePullSecret", &msg, None);
    }
    ctx.event(false, "Pulling", &format!("Pulling image \"{image}\""), Some(&name));
    if pause(ctx.tick(), &mut kill).await.is_some() {
        return None;
    }
    if plan.fault() == Some(&PodFault::ImagePull) {
        // As a kubelet: ErrImagePull, then ImagePullBackOff until the back-off ends, then a new
        // pull that fails the same way, the back-off doubling (10 s to 5 min there; 10 to 300
        // ticks here), until the pod is deleted.
        let msg = format!(
            "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/library/{image}\": not found"
        );
        let backoff = format!("Back-off pulling image \"{image}\"");
        let mut wait = 10;
        loop {
            ctx.set_container(init, i, waiting("ErrImagePull", Some(msg.clone())));
            ctx.event(true, "Failed", &msg, Some(&name));
            ctx.event(true, "Failed", "Error: ErrImagePull", Some(&name));
            if pause(ctx.tick(), &mut kill).await.is_some() {
                return None;
            }
            ctx.set_container(init, i, waiting("ImagePullBackOff", Some(backoff.clone())));
            ctx.event(false, "BackOff", &backoff, Some(&name));
            ctx.event(true, "Failed", "Error: ImagePullBackOff", Some(&name));
            if pause(ctx.tick() * wait, &mut kill).await.is_some() {
                return None;
            }
            wait = (wait * 2).min(300);
            ctx.event(false, "Pulling", &format!("Pulling image \"{image}\""), Some(&name));
            if pause(ctx.tick(), &mut kill).await.is_some() {
                return None;
            }
        }
    }
    ctx.event(
        false,
        "Pulled",
        &format!("Successfully pulled image \"{image}\" in 12ms (12ms including waiting). Image size: 3623807 bytes."),
        Some(&name),
    );
    ctx.event(false, "Created", &format!("Created container: {name}"), Some(&name));
    let ns = ctx.key.namespace.clone();
    let log = ctx.shared.logs.open(&ns, &ctx.key.name, &name);
    let id = format!("containerd://{}", random_hex(32));
    let started = time::now();
    let (id2, started2) = (id.clone(), started.clone());
    ctx.set_container(init, i, move |c| {
        c.container_id = Some(id2);
        c.state = State::Running { started_at: started2 };
    });
    ctx.event(false, "Started", &format!("Started container {name}"), Some(&name));
    let pod = ctx.shared.store.get(&ctx.key).unwrap_or_else(|| ctx.pod.clone());
    // "Killing" is reported when the kill starts (the runner may then wait out the grace
    // period), or at the latest once the container is gone.
    let announced = AtomicBool::new(false);
    let kill_seen = kill.clone();
    let mut watch_kill = kill.clone();
    let announce = async {
        if matches!(killed(&mut watch_kill).await, Kill::Deleted { .. }) && !announced.swap(true, Ordering::SeqCst) {
            ctx.event(false, "Killing", &format!("Stopping container {name}"), Some(&name));
        }
        std::future::pending::<()>().await
    };
    let run = runner::run_container(
        ctx.shared.runner,
        ContainerRun {
            shared: &ctx.shared,
            pod: &pod,
            container: &c,
            log: log.clone(),
            kill,
            plan: &plan,
        },
    );
    let exit = tokio::select! {
        e = run => e,
        _ = announce => unreachable!("announce never completes"),
    };
    if matches!(*kill_seen.borrow(), Some(Kill::Deleted { .. })) && !announced.swap(true, Ordering::SeqCst) {
        ctx.event(false, "Killing", &format!("Stopping container {name}"), Some(&name));
    }
    log.finish();
    let finished = time::now();
    let e2 = exit.clone();
    ctx.set_container(init, i, move |c| {
        c.state = State::Terminated {
            exit: e2,
            started_at: started,
            finished_at: finished,
            container_id: id,
        };
    });
    Some(exit)
}
