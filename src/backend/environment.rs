//! A step's environment: a sorted map of variable names to values whose large common part
//! (the ~45 `CI_*` variables every step of a workflow carries) is shared, not copied, between
//! the steps of a workflow. It reads, iterates, compares and serializes exactly as the
//! `BTreeMap<String, String>` it stands for (Woodpecker's `map[string]string`); a step's own
//! variables shadow the shared ones.

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Peekable;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

type Map = BTreeMap<String, String>;

#[derive(Clone, Default)]
pub struct Environment {
    /// Shared between steps; never changed in place.
    shared: Arc<Map>,
    /// This step's own variables; a name here hides the same name in `shared`.
    own: Map,
}

impl Environment {
    /// An environment over `shared` (one `Arc` for every step of a workflow).
    pub fn over(shared: Arc<Map>) -> Self {
        Environment {
            shared,
            own: Map::new(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&String> {
        self.own.get(name).or_else(|| self.shared.get(name))
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a variable; the previous value, if any.
    pub fn insert(&mut self, name: String, value: String) -> Option<String> {
        let shared = self.shared.get(&name).cloned();
        self.own.insert(name, value).or(shared)
    }

    /// Removes a variable (copies the shared part first when it is there).
    pub fn remove(&mut self, name: &str) -> Option<String> {
        if self.shared.contains_key(name) {
            self.unshare();
        }
        self.own.remove(name)
    }

    pub fn len(&self) -> usize {
        self.shared.len() + self.own.keys().filter(|k| !self.shared.contains_key(*k)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.is_empty() && self.own.is_empty()
    }

    /// Name and value in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            shared: self.shared.iter().peekable(),
            own: self.own.iter().peekable(),
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(k, _)| k)
    }

    /// Every value, mutably (copies the shared part: for masking, not for hot paths).
    pub fn iter_mut(&mut self) -> btree_map::IterMut<'_, String, String> {
        self.unshare();
        self.own.iter_mut()
    }

    /// Moves the shared variables into this step's own map.
    fn unshare(&mut self) {
        if self.shared.is_empty() {
            return;
        }
        let shared = std::mem::take(&mut self.shared);
        for (k, v) in shared.iter() {
            self.own.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// The merged iteration of [`Environment::iter`]: both maps are sorted, so one pass.
pub struct Iter<'a> {
    shared: Peekable<btree_map::Iter<'a, String, String>>,
    own: Peekable<btree_map::Iter<'a, String, String>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a String);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.shared.peek(), self.own.peek()) {
            (Some((s, _)), Some((o, _))) => match s.cmp(o) {
                std::cmp::Ordering::Less => self.shared.next(),
                std::cmp::Ordering::Greater => self.own.next(),
                std::cmp::Ordering::Equal => {
                    self.shared.next();
                    self.own.next()
                }
            },
            (Some(_), None) => self.shared.next(),
            (None, _) => self.own.next(),
        }
    }
}

impl<'a> IntoIterator for &'a Environment {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl std::ops::Index<&str> for Environment {
    type Output = String;

    fn index(&self, name: &str) -> &String {
        self.get(name)
            .unwrap_or_else(|| panic!("no variable `{name}` in the environment"))
    }
}

impl PartialEq for Environment {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Extend<(String, String)> for Environment {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl FromIterator<(String, String)> for Environment {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Environment {
            shared: Arc::default(),
            own: iter.into_iter().collect(),
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for Environment {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<Map> for Environment {
    fn from(own: Map) -> Self {
        Environment {
            shared: Arc::default(),
            own,
        }
    }
}

impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Environment::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Map> {
        Arc::new(
            [("A", "1"), ("C", "3"), ("E", "5")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn reads_iterates_and_serializes_as_the_map_it_stands_for() {
        let mut env = Environment::over(shared());
        assert_eq!(env.insert("B".into(), "2".into()), None);
        assert_eq!(env.insert("C".into(), "three".into()), Some("3".into()));
        env.extend([("F".to_string(), "6".to_string())]);
        let want: Map = [("A", "1"), ("B", "2"), ("C", "three"), ("E", "5"), ("F", "6")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let got: Vec<_> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, want.clone().into_iter().collect::<Vec<_>>());
        assert_eq!(env.len(), 5);
        assert_eq!(env["C"], "three");
        assert!(env.contains_key("E") && !env.contains_key("Z"));
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
        assert_eq!(env, Environment::from(want.clone()));
        let back: Environment = serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn changes_never_reach_the_shared_part() {
        let base = shared();
        let mut a = Environment::over(base.clone());
        let b = Environment::over(base.clone());
        assert_eq!(a.remove("A"), Some("1".into()));
        for (_, v) in a.iter_mut() {
            v.push('!');
        }
        assert_eq!(a.get("C").map(String::as_str), Some("3!"));
        assert!(a.get("A").is_none());
        assert_eq!(b["A"], "1");
        assert_eq!(b["C"], "3");
        assert_eq!(base.len(), 3);
    }
}
