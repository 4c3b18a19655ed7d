//! List pagination (`limit` and `continue`): pages in key order (namespace, name), a continue
//! token that carries the first page's resourceVersion, `remainingItemCount`, and 410 Expired
//! for a token older than the change history (as after an etcd compaction).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::status::ApiError;
use super::store::Store;
use super::wire::Query;

/// One page of a list.
pub struct Page {
    pub items: Vec<Value>,
    pub rv: u64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

fn key_of(o: &Value) -> (String, String) {
    let m = &o["metadata"];
    (
        m["namespace"].as_str().unwrap_or("").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

fn expired() -> ApiError {
    ApiError::expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
    )
}

/// Applies `limit`/`continue` to `items` (already filtered, in key order) listed at `rv`.
pub fn page(store: &Store, items: Vec<Value>, rv: u64, q: &Query) -> Result<Page, ApiError> {
    let limit = q.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let (mut items, rv) = match q.get("continue").filter(|c| !c.is_empty()) {
        None => (items, rv),
        Some(token) => {
            let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
            let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
            let t: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
            let token_rv = t["rv"].as_u64().ok_or_else(bad)?;
            if store.changes_since(token_rv).is_err() {
                return Err(expired());
            }
            let start = (
                t["ns"].as_str().unwrap_or("").to_string(),
                t["name"].as_str().unwrap_or("").to_string(),
            );
            (items.into_iter().filter(|o| key_of(o) > start).collect(), token_rv)
        }
    };
    let mut page = Page {
        items: Vec::new(),
        rv,
        continue_token: None,
        remaining: None,
    };
    match limit {
        Some(l) if items.len() > l => {
            let rest = items.split_off(l);
            let (ns, name) = key_of(&items[l - 1]);
            let token = json!({"rv": rv, "ns": ns, "name": name});
            page.continue_token = Some(URL_SAFE_NO_PAD.encode(token.to_string()));
            page.remaining = Some(rest.len());
            page.items = items;
        }
        _ => page.items = items,
    }
    Ok(page)
}
