//! The object store: every object as `serde_json::Value`, keyed by (plural, namespace, name),
//! one global resourceVersion counter, and a bounded history of changes for watches. Knows
//! nothing of HTTP, validation or the kubelet; callers hold no lock across an await.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::status::ApiError;
use super::time;

/// Where an object lives. `namespace` is empty for cluster-scoped kinds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(plural: &str, namespace: &str, name: &str) -> Self {
        Key {
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One entry of the history: what changed at `rv`, with the state before (for selector
/// transitions: an object that stops matching is delivered as DELETED).
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: ChangeKind,
    pub key: Key,
    pub object: Arc<Value>,
    pub prev: Option<Arc<Value>>,
}

/// Why a watch cannot start at the requested resourceVersion.
#[derive(Debug, Clone, Copy)]
pub struct TooOld {
    pub oldest: u64,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    window: usize,
    feeds: Vec<Arc<FeedInner>>,
}

type FeedFilter = Box<dyn Fn(&Change) -> bool + Send + Sync>;

struct FeedInner {
    filter: FeedFilter,
    /// The keys changed since the last `take`, each once, in order of first change.
    dirty: Mutex<(Vec<Key>, HashSet<Key>)>,
    notify: Notify,
}

/// The keys of the changes one consumer (the kubelet, the garbage collector) cares about, each
/// once until taken: a controller handles what changed instead of rescanning the store at every
/// change, so its work grows with the changes, not with changes x objects. Unbounded, unlike the
/// watch history: nothing is lost when the consumer falls behind.
pub struct Feed(Arc<FeedInner>);

impl Feed {
    /// The keys changed since the last call, oldest first.
    pub fn take(&self) -> Vec<Key> {
        let mut d = self.0.dirty.lock().unwrap_or_else(|p| p.into_inner());
        d.1.clear();
        std::mem::take(&mut d.0)
    }

    /// Resolves when keys are waiting (at once if some arrived since the last `take`).
    pub async fn changed(&self) {
        self.0.notify.notified().await
    }
}

/// Shared by the server, kubelet and garbage collector.
pub struct Store {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl Store {
    pub fn new(window: usize) -> Self {
        let (changed, _) = watch::channel(1);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                window: window.max(1),
                feeds: Vec::new(),
            }),
            changed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fires after every change with the new resourceVersion.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A change feed of the changes `filter` accepts, from now on.
    pub fn feed(&self, filter: impl Fn(&Change) -> bool + Send + Sync + 'static) -> Feed {
        let inner = Arc::new(FeedInner {
            filter: Box::new(filter),
            dirty: Mutex::new((Vec::new(), HashSet::new())),
            notify: Notify::new(),
        });
        self.lock().feeds.push(inner.clone());
        Feed(inner)
    }

    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    pub fn get(&self, key: &Key) -> Option<Value> {
        self.lock().objects.get(key).cloned()
    }

    /// Objects of one plural (in one namespace, or all), in key order, with the current RV.
    pub fn list(&self, plural: &str, namespace: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let items = of_kind(&inner.objects, plural, namespace)
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// [`Store::scan`] over one plural (in one namespace, or all): visits only those objects.
    pub fn scan_kind<T>(
        &self,
        plural: &str,
        namespace: Option<&str>,
        mut f: impl FnMut(&Key, &Value) -> Option<T>,
    ) -> Vec<T> {
        of_kind(&self.lock().objects, plural, namespace)
            .filter_map(|(k, v)| f(k, v))
            .collect()
    }

    /// Picks from every object under the lock, cloning only what `f` returns (the garbage
    /// collector and kubelet run this after every change).
    pub fn scan<T>(&self, mut f: impl FnMut(&Key, &Value) -> Option<T>) -> Vec<T> {
        self.lock().objects.iter().filter_map(|(k, v)| f(k, v)).collect()
    }

    /// Stores a new object: fills name (from generateName), uid, resourceVersion and
    /// creationTimestamp. 409 when the name is taken.
    pub fn create(&self, plural: &str, namespace: &str, mut obj: Value) -> Result<Value, ApiError> {
        let mut inner = self.lock();
        let meta = obj["metadata"]
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
        let mut name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        if name.is_empty() {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            loop {
                name = format!("{prefix}{}", random_suffix());
                if !inner.objects.contains_key(&Key::new(plural, namespace, &name)) {
                    break;
                }
            }
            meta.insert("name".into(), json!(name));
        }
        let key = Key::new(plural, namespace, &name);
        if inner.objects.contains_key(&key) {
            return Err(ApiError::already_exists(plural, &name));
        }
        inner.rv += 1;
        let rv = inner.rv;
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(time::now()));
        meta.remove("deletionTimestamp");
        inner.objects.insert(key.clone(), obj.clone());
        push(
            &mut inner,
            Change {
                rv,
                kind: ChangeKind::Added,
                key,
                object: Arc::new(obj.clone()),
                prev: None,
            },
        );
        drop(inner);
        self.changed.send_replace(rv);
        Ok(obj)
    }

    /// Applies `f` to the stored object. No change (same JSON) means no new resourceVersion.
    /// Returns the object after the change, or `None` when it does not exist.
    pub fn update(&self, key: &Key, f: impl FnOnce(&mut Value)) -> Option<Value> {
        let mut inner = self.lock();
        let old = inner.objects.get(key)?.clone();
        let mut new = old.clone();
        f(&mut new);
        // Identity fields are the store's, whatever `f` did.
        for field in ["name", "namespace", "uid", "creationTimestamp", "resourceVersion"] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if new == old {
            return Some(old);
        }
        inner.rv += 1;
        let rv = inner.rv;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        inner.objects.insert(key.clone(), new.clone());
        let change = Change {
            rv,
            kind: ChangeKind::Modified,
            key: key.clone(),
            object: Arc::new(new.clone()),
            prev: Some(Arc::new(old)),
        };
        push(&mut inner, change);
        drop(inner);
        self.changed.send_replace(rv);
        Some(new)
    }

    /// Removes an object for good; the DELETED event carries its last state at a new RV.
    pub fn remove(&self, key: &Key) -> Option<Value> {
        let mut inner = self.lock();
        let mut obj = inner.objects.remove(key)?;
        inner.rv += 1;
        let rv = inner.rv;
        let prev = Arc::new(obj.clone());
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let change = Change {
            rv,
            kind: ChangeKind::Deleted,
            key: key.clone(),
            object: Arc::new(obj.clone()),
            prev: Some(prev),
        };
        push(&mut inner, change);
        drop(inner);
        self.changed.send_replace(rv);
        Some(obj)
    }

    /// Forgets the history (as an etcd compaction does): watches from an older RV get 410.
    pub fn compact(&self) {
        self.lock().history.clear();
    }

    /// Changes after `rv` (exclusive), oldest first. Fails when the history no longer reaches
    /// back to `rv`.
    pub fn changes_since(&self, rv: u64) -> Result<Vec<Change>, TooOld> {
        let inner = self.lock();
        if rv >= inner.rv {
            return Ok(Vec::new());
        }
        let oldest = inner.history.front().map(|c| c.rv).unwrap_or(inner.rv + 1);
        if rv + 1 < oldest {
            return Err(TooOld { oldest });
        }
        // The history is in resourceVersion order: start at the first newer change.
        let from = inner.history.partition_point(|c| c.rv <= rv);
        Ok(inner.history.range(from..).cloned().collect())
    }
}

/// The objects of one plural (and namespace): a range of the map, which is ordered by plural,
/// then namespace, then name, so a lookup costs what it finds, not the whole store.
fn of_kind<'a>(
    objects: &'a BTreeMap<Key, Value>,
    plural: &'a str,
    namespace: Option<&'a str>,
) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
    objects
        .range(Key::new(plural, namespace.unwrap_or(""), "")..)
        .take_while(move |(k, _)| k.plural == plural && namespace.is_none_or(|ns| k.namespace == ns))
}

fn push(inner: &mut Inner, change: Change) {
    for f in &inner.feeds {
        if (f.filter)(&change) {
            let mut d = f.dirty.lock().unwrap_or_else(|p| p.into_inner());
            if d.1.insert(change.key.clone()) {
                d.0.push(change.key.clone());
            }
            drop(d);
            f.notify.notify_one();
        }
    }
    inner.history.push_back(change);
    while inner.history.len() > inner.window {
        inner.history.pop_front();
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).expect("system random");
    b
}

/// A random RFC 4122 version-4 UID.
pub fn new_uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Five characters as the apiserver appends to `generateName` (no vowels, no confusables).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A random hex string of `n` bytes (tokens, container IDs).
pub fn random_hex(n: usize) -> String {
    let mut out = String::new();
    while out.len() < n * 2 {
        out.extend(random_bytes::<16>().iter().map(|x| format!("{x:02x}")));
    }
    out.truncate(n * 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_update_remove_bump_one_counter_and_keep_history() {
        let s = Store::new(3);
        let a = s.create("pods", "ns", json!({"metadata": {"name": "a"}})).unwrap();
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        assert_eq!(
            s.create("pods", "ns", json!({"metadata": {"name": "a"}}))
                .unwrap_err()
                .code,
            409
        );
        let k = Key::new("pods", "ns", "a");
        s.update(&k, |v| v["spec"] = json!({"x": 1}));
        s.update(&k, |v| v["spec"] = json!({"x": 1})); // no-op
        assert_eq!(s.current_rv(), 3);
        s.remove(&k);
        let ch = s.changes_since(2).unwrap();
        assert_eq!(
            ch.iter().map(|c| c.kind).collect::<Vec<_>>(),
            [ChangeKind::Modified, ChangeKind::Deleted]
        );
        for i in 0..5 {
            s.create("pods", "ns", json!({"metadata": {"generateName": format!("g{i}-")}}))
                .unwrap();
        }
        assert!(s.changes_since(2).is_err());
        assert_eq!(s.changes_since(s.current_rv() - 2).unwrap().len(), 2);
    }

    #[test]
    fn lists_visit_one_kind_and_namespace() {
        let s = Store::new(10);
        for (plural, ns, name) in [
            ("pods", "a", "x"),
            ("pods", "b", "y"),
            ("podsx", "a", "z"),
            ("events", "a", "e"),
        ] {
            s.create(plural, ns, json!({"metadata": {"name": name}})).unwrap();
        }
        let names =
            |plural: &str, ns: Option<&str>| -> Vec<String> { s.scan_kind(plural, ns, |k, _| Some(k.name.clone())) };
        assert_eq!(names("pods", None), ["x", "y"]);
        assert_eq!(names("pods", Some("b")), ["y"]);
        assert_eq!(names("podsx", None), ["z"]);
        assert_eq!(s.list("events", Some("a")).0.len(), 1);
        assert!(names("pods", Some("c")).is_empty());
    }

    #[tokio::test]
    async fn a_feed_hands_over_each_changed_key_once_in_order() {
        let s = Store::new(1);
        let feed = s.feed(|c| c.key.plural == "pods");
        for name in ["a", "b"] {
            s.create("pods", "ns", json!({"metadata": {"name": name}})).unwrap();
        }
        s.create("events", "ns", json!({"metadata": {"name": "e"}})).unwrap();
        let a = Key::new("pods", "ns", "a");
        s.update(&a, |v| v["spec"] = json!({"x": 1}));
        s.remove(&a);
        // More changes than the history window: the feed still has them all.
        feed.changed().await;
        assert_eq!(feed.take(), [a.clone(), Key::new("pods", "ns", "b")]);
        assert!(feed.take().is_empty());
        s.update(&Key::new("pods", "ns", "b"), |v| v["spec"] = json!({"y": 1}));
        feed.changed().await;
        assert_eq!(feed.take(), [Key::new("pods", "ns", "b")]);
    }
}
