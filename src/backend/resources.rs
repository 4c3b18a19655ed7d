//! Agent-wide resource defaults and maximums for step containers (ours: Woodpecker has none and
//! points admins at a LimitRange, which rejects a pod instead of explaining). Set with
//! `WOODPECKER_BACKEND_K8S_DEFAULT_RESOURCES` and `WOODPECKER_BACKEND_K8S_MAX_RESOURCES`, both
//! `{requests: {cpu: 100m}, limits: {memory: 1Gi}}`.
//!
//! The rules, per resource name:
//! - a default fills what the step does not set; a default limit below the step's own request
//!   yields to the request, a default request above the step's limit yields to the limit;
//! - a value above the maximum is lowered to it, with a warning in the step log;
//! - a request left above its limit after that is lowered to the limit, with a warning.
//!
//! Pure: canonical quantities in, canonical quantities and warnings out.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

use super::quantity::{self, Quantity};

/// Requests and limits, canonical quantities by resource name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
}

impl Bounds {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty()
    }

    /// From the option's YAML value; the error names the key at fault.
    pub fn from_value(v: &Value) -> Result<Bounds, String> {
        let mut out = Bounds::default();
        let Some(map) = v.as_object() else {
            return if v.is_null() {
                Ok(out)
            } else {
                Err("want a map with `requests` and/or `limits`".into())
            };
        };
        for (kind, entries) in map {
            let target = match kind.as_str() {
                "requests" => &mut out.requests,
                "limits" => &mut out.limits,
                other => return Err(format!("`{other}` is not `requests` or `limits`")),
            };
            let Some(entries) = entries.as_object() else {
                return Err(format!("`{kind}` must map resource names to quantities"));
            };
            for (name, q) in entries {
                let text = match q {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(format!("`{kind}.{name}` is not a quantity")),
                };
                let canonical = quantity::canonical(&text).map_err(|e| format!("`{kind}.{name}`: {e}"))?;
                target.insert(name.clone(), canonical);
            }
        }
        Ok(out)
    }
}

fn cmp(a: &str, b: &str) -> Ordering {
    match (Quantity::parse(a), Quantity::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp_value(&b),
        // Both sides are canonical quantities by construction.
        _ => Ordering::Equal,
    }
}

/// Applies `defaults` and `max` to a step's canonical `requests` and `limits`.
pub fn apply(
    defaults: &Bounds,
    max: &Bounds,
    requests: &mut BTreeMap<String, String>,
    limits: &mut BTreeMap<String, String>,
    warnings: &mut Vec<String>,
) {
    for (name, v) in &defaults.limits {
        if !limits.contains_key(name) {
            let floor = requests.get(name).filter(|r| cmp(r, v) == Ordering::Greater);
            limits.insert(name.clone(), floor.unwrap_or(v).clone());
        }
    }
    for (name, v) in &defaults.requests {
        if !requests.contains_key(name) {
            let ceiling = limits.get(name).filter(|l| cmp(v, l) == Ordering::Greater);
            requests.insert(name.clone(), ceiling.unwrap_or(v).clone());
        }
    }
    for (kind, values, caps) in [
        ("requests", &mut *requests, &max.requests),
        ("limits", &mut *limits, &max.limits),
    ] {
        for (name, cap) in caps {
            if let Some(v) = values.get_mut(name)
                && cmp(v, cap) == Ordering::Greater
            {
                warnings.push(format!(
                    "resources.{kind}.{name} {v} is above the agent's maximum {cap}: using {cap}"
                ));
                *v = cap.clone();
            }
        }
    }
    for (name, limit) in limits.iter() {
        if let Some(request) = requests.get_mut(name)
            && cmp(request, limit) == Ordering::Greater
        {
            warnings.push(format!(
                "resources.requests.{name} {request} is above its limit {limit}: using {limit}"
            ));
            *request = limit.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bounds(v: Value) -> Bounds {
        Bounds::from_value(&v).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_canonical_and_rejects_what_it_cannot_use() {
        let b = bounds(json!({"requests": {"cpu": "1000m", "memory": 134217728}, "limits": {"memory": "1Gi"}}));
        assert_eq!(b.requests, map(&[("cpu", "1"), ("memory", "134217728")]));
        assert_eq!(b.limits, map(&[("memory", "1Gi")]));
        assert!(Bounds::from_value(&Value::Null).unwrap().is_empty());
        for (bad, why) in [
            (json!({"request": {}}), "`request` is not `requests` or `limits`"),
            (
                json!({"limits": {"cpu": "lots"}}),
                "`limits.cpu`: invalid quantity \"lots\"",
            ),
            (
                json!({"limits": ["cpu"]}),
                "`limits` must map resource names to quantities",
            ),
            (json!("1Gi"), "want a map with `requests` and/or `limits`"),
        ] {
            let e = Bounds::from_value(&bad).unwrap_err();
            assert!(e.starts_with(why), "{e}");
        }
    }

    #[test]
    fn defaults_fill_gaps_and_yield_to_the_steps_own_values() {
        let defaults = bounds(json!({"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}));
        let (mut req, mut lim, mut warnings) = (BTreeMap::new(), BTreeMap::new(), Vec::new());
        apply(&defaults, &Bounds::default(), &mut req, &mut lim, &mut warnings);
        assert_eq!(req, map(&[("cpu", "100m"), ("memory", "256Mi")]));
        assert_eq!(lim, map(&[("memory", "1Gi")]));
        // The step asks for 2Gi: the default limit rises to it, nothing to warn about.
        let (mut req, mut lim) = (map(&[("memory", "2Gi")]), BTreeMap::new());
        apply(&defaults, &Bounds::default(), &mut req, &mut lim, &mut warnings);
        assert_eq!(lim, map(&[("memory", "2Gi")]));
        // The step caps memory at 128Mi: the default request comes down to it.
        let (mut req, mut lim) = (BTreeMap::new(), map(&[("memory", "128Mi")]));
        apply(&defaults, &Bounds::default(), &mut req, &mut lim, &mut warnings);
        assert_eq!(req["memory"], "128Mi");
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn maximums_lower_values_with_a_warning_and_keep_requests_under_limits() {
        let max = bounds(json!({"limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "2"}}));
        let (mut req, mut lim, mut warnings) = (
            map(&[("cpu", "3"), ("memory", "1Gi")]),
            map(&[("cpu", "16"), ("memory", "4Gi")]),
            Vec::new(),
        );
        apply(&Bounds::default(), &max, &mut req, &mut lim, &mut warnings);
        assert_eq!(req, map(&[("cpu", "2"), ("memory", "1Gi")]));
        assert_eq!(lim, map(&[("cpu", "4"), ("memory", "4Gi")]));
        assert_eq!(
            warnings,
            [
                "resources.requests.cpu 3 is above the agent's maximum 2: using 2",
                "resources.limits.cpu 16 is above the agent's maximum 4: using 4",
            ]
        );
        // A capped limit below the step's request pulls the request down too.
        let max = bounds(json!({"limits": {"memory": "1Gi"}}));
        let (mut req, mut lim, mut warnings) = (map(&[("memory", "2Gi")]), map(&[("memory", "4Gi")]), Vec::new());
        apply(&Bounds::default(), &max, &mut req, &mut lim, &mut warnings);
        assert_eq!((req["memory"].as_str(), lim["memory"].as_str()), ("1Gi", "1Gi"));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[1].starts_with("resources.requests.memory 2Gi is above its limit 1Gi"));
    }
}
