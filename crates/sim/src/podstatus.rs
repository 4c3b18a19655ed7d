//! The kubelet's view of one pod's status, rendered to the `status` JSON the apiserver stores:
//! phase, reason/message, conditions and container statuses with their waiting/running/
//! terminated states. Pure.

use serde_json::{Value, json};

use super::runner::Exit;
use super::time;

#[derive(Debug, Clone)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit: Exit,
        started_at: String,
        finished_at: String,
        container_id: String,
    },
}

#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub state: State,
    pub container_id: Option<String>,
}

impl Container {
    pub fn new(c: &Value, reason: &str) -> Self {
        Container {
            name: c["name"].as_str().unwrap_or("").into(),
            image: c["image"].as_str().unwrap_or("").into(),
            state: State::Waiting {
                reason: reason.into(),
                message: None,
            },
            container_id: None,
        }
    }

    pub fn terminated(&self) -> Option<&Exit> {
        match &self.state {
            State::Terminated { exit, .. } => Some(exit),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated {
                exit,
                started_at,
                finished_at,
                container_id,
            } => {
                let mut t = json!({"exitCode": exit.code, "reason": exit.reason, "startedAt": started_at,
                                   "finishedAt": finished_at, "containerID": container_id});
                if let Some(s) = exit.signal {
                    t["signal"] = json!(s);
                }
                if let Some(m) = &exit.message {
                    t["message"] = json!(m);
                }
                json!({"terminated": t})
            }
        };
        let running = matches!(self.state, State::Running { .. });
        let mut v = json!({"name": self.name, "image": self.image, "imageID": "", "state": state, "lastState": {},
                           "ready": running, "restartCount": 0, "started": running});
        if let Some(id) = &self.container_id {
            v["containerID"] = json!(id);
            v["imageID"] = json!(format!("docker.io/library/{}@sha256:{}", self.image, "0".repeat(64)));
        }
        v
    }
}

/// (type, status, reason, message, lastTransitionTime)
pub type Condition = (String, bool, Option<String>, Option<String>, String);

#[derive(Debug, Clone)]
pub struct PodStatus {
    pub phase: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// (type, status, reason, message, lastTransitionTime)
    pub conditions: Vec<Condition>,
    pub init: Vec<Container>,
    pub containers: Vec<Container>,
    pub start_time: Option<String>,
    pub pod_ip: Option<String>,
}

impl PodStatus {
    pub fn new(pod: &Value) -> Self {
        let init_reason = if pod["spec"]["initContainers"].as_array().is_some_and(|a| !a.is_empty()) {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        PodStatus {
            phase: "Pending".into(),
            reason: None,
            message: None,
            conditions: Vec::new(),
            init: pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Container::new(c, "PodInitializing"))
                .collect(),
            containers: pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| Container::new(c, init_reason))
                .collect(),
            start_time: None,
            pod_ip: None,
        }
    }

    /// Sets a condition, keeping its transition time when the status does not change.
    pub fn condition(&mut self, kind: &str, status: bool, reason: Option<&str>, message: Option<&str>) {
        let now = time::now();
        match self.conditions.iter_mut().find(|c| c.0 == kind) {
            Some(c) => {
                if c.1 != status {
                    c.4 = now;
                }
                c.1 = status;
                c.2 = reason.map(String::from);
                c.3 = message.map(String::from);
            }
            None => self.conditions.push((
                kind.into(),
                status,
                reason.map(String::from),
                message.map(String::from),
                now,
            )),
        }
    }

    pub fn to_json(&self) -> Value {
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|(t, s, r, m, at)| {
                let mut c = json!({"type": t, "status": if *s { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": at});
                if let Some(r) = r {
                    c["reason"] = json!(r);
                }
                if let Some(m) = m {
                    c["message"] = json!(m);
                }
                c
            })
            .collect();
        let mut v = json!({"phase": self.phase, "conditions": conditions, "qosClass": "BestEffort"});
        if !self.containers.is_empty() && self.start_time.is_some() {
            v["containerStatuses"] = json!(self.containers.iter().map(Container::to_json).collect::<Vec<_>>());
            if !self.init.is_empty() {
                v["initContainerStatuses"] = json!(self.init.iter().map(Container::to_json).collect::<Vec<_>>());
            }
        }
        for (k, val) in [
            ("reason", &self.reason),
            ("message", &self.message),
            ("startTime", &self.start_time),
        ] {
            if let Some(x) = val {
                v[k] = json!(x);
            }
        }
        if let Some(ip) = &self.pod_ip {
            v["podIP"] = json!(ip);
            v["podIPs"] = json!([{"ip": ip}]);
            v["hostIP"] = json!("10.0.0.10");
            v["hostIPs"] = json!([{"ip": "10.0.0.10"}]);
        }
        v
    }
}
