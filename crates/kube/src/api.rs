//! Typed create/get/list/replace/delete/watch for one kind of object, scoped to a namespace or to all
//! of them. Builds paths from [`Resource`]'s constants; the transport does the rest. Watch and
//! log streams live in `watch` and `logs`; this file only opens them.

use std::marker::PhantomData;

use bytes::Bytes;
use http::Method;

use super::client::{Client, Req};
use super::error::{Error, Result};
use super::params::{DeleteParams, ListParams, encode};
use super::types::{List, Resource};

/// Operations on objects of kind `K`.
#[derive(Clone)]
pub struct Api<K> {
    pub(crate) client: Client,
    /// `None` for [`Api::all`].
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl<K: Resource> Api<K> {
    pub fn namespaced(client: Client, namespace: &str) -> Self {
        Api {
            client,
            namespace: Some(namespace.to_string()),
            _kind: PhantomData,
        }
    }

    /// In the client's default namespace.
    pub fn default_namespaced(client: Client) -> Self {
        let ns = client.default_namespace().to_string();
        Self::namespaced(client, &ns)
    }

    /// Across all namespaces (or a cluster-scoped kind). `create` then takes the namespace
    /// from the object.
    pub fn all(client: Client) -> Self {
        Api {
            client,
            namespace: None,
            _kind: PhantomData,
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `/api/v1[/namespaces/{ns}]/{plural}` or `/apis/{group}/{version}/...`.
    pub(crate) fn collection_path(&self, namespace: Option<&str>) -> String {
        let mut path = if K::API_VERSION.contains('/') {
            format!("/apis/{}", K::API_VERSION)
        } else {
            format!("/api/{}", K::API_VERSION)
        };
        if let Some(ns) = namespace.filter(|_| K::NAMESPACED) {
            path.push_str("/namespaces/");
            path.push_str(&encode(ns));
        }
        path.push('/');
        path.push_str(K::PLURAL);
        path
    }

    pub(crate) fn item_path(&self, name: &str) -> String {
        format!("{}/{}", self.collection_path(self.namespace.as_deref()), encode(name))
    }

    /// POST the object; returns what the server stored (uid, resourceVersion, defaults).
    pub async fn create(&self, obj: &K) -> Result<K> {
        let meta = obj.meta();
        let ns = self
            .namespace
            .as_deref()
            .or(Some(meta.namespace.as_str()).filter(|s| !s.is_empty()));
        if K::NAMESPACED && ns.is_none() {
            return Err(Error::Setup {
                what: format!(
                    "creating {} {:?}: no namespace on the object or the Api",
                    K::KIND,
                    meta.name
                ),
                source: None,
            });
        }
        let body = serde_json::to_vec(obj).map_err(|source| Error::Decode {
            what: format!("encoding {} {:?}", K::KIND, meta.name),
            source: source.into(),
        })?;
        let req = Req {
            method: Method::POST,
            path: self.collection_path(ns),
            body: Some(Bytes::from(body)),
        };
        self.client.request_json(&req).await
    }

    /// PUT the whole object back. With `metadata.resourceVersion` set, the server answers 409
    /// Conflict when the object changed since it was read (optimistic concurrency).
    pub async fn replace(&self, obj: &K) -> Result<K> {
        let meta = obj.meta();
        let body = serde_json::to_vec(obj).map_err(|source| Error::Decode {
            what: format!("encoding {} {:?}", K::KIND, meta.name),
            source: source.into(),
        })?;
        let req = Req {
            method: Method::PUT,
            path: self.item_path(&meta.name),
            body: Some(Bytes::from(body)),
        };
        self.client.request_json(&req).await
    }

    pub async fn get(&self, name: &str) -> Result<K> {
        self.client.request_json(&Req::get(self.item_path(name))).await
    }

    /// `get`, with NotFound as `None`.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page (or everything, without `limit`). `metadata.resourceVersion` of the result is
    /// where a watch should start.
    pub async fn list(&self, params: &ListParams) -> Result<List<K>> {
        let path = format!(
            "{}{}",
            self.collection_path(self.namespace.as_deref()),
            params.query().as_str()
        );
        self.client.request_json(&Req::get(path)).await
    }

    /// Every page of a paged list (500 per page, like client-go's pager); the resourceVersion is
    /// the first page's.
    pub async fn list_all(&self, params: &ListParams) -> Result<List<K>> {
        let mut params = ListParams {
            limit: params.limit.or(Some(500)),
            ..params.clone()
        };
        let mut all = self.list(&params).await?;
        while !all.metadata.continue_.is_empty() {
            params.continue_token = Some(std::mem::take(&mut all.metadata.continue_));
            let page = self.list(&params).await?;
            all.items.extend(page.items);
            all.metadata.continue_ = page.metadata.continue_;
        }
        Ok(all)
    }

    /// DELETE with a `DeleteOptions` body. NotFound stays an error; callers that mean "make
    /// sure it is gone" check [`Error::is_not_found`].
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<()> {
        let req = Req {
            method: Method::DELETE,
            path: self.item_path(name),
            body: Some(Bytes::from(params.body())),
        };
        // 200 with the object (pods: with deletionTimestamp), 202, or a Success Status.
        self.client.request_bytes(&req).await.map(drop)
    }

    /// PATCH with a JSON merge patch (RFC 7386); returns the object as stored.
    pub async fn merge_patch(&self, name: &str, patch: &serde_json::Value) -> Result<K> {
        let body = serde_json::to_vec(patch).map_err(|source| Error::Decode {
            what: format!("encoding a patch of {} {name:?}", K::KIND),
            source: source.into(),
        })?;
        let req = Req {
            method: Method::PATCH,
            path: self.item_path(name),
            body: Some(Bytes::from(body)),
        };
        self.client.request_json(&req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::types::{Namespace, Pod};

    fn client() -> Client {
        Client::new(Config {
            server: "http://127.0.0.1:1".parse().unwrap(),
            namespace: "default".into(),
            tls: Default::default(),
            proxy_url: None,
            auth: Default::default(),
            impersonate: Default::default(),
            origin: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn paths() {
        let pods: Api<Pod> = Api::namespaced(client(), "ci");
        assert_eq!(pods.collection_path(Some("ci")), "/api/v1/namespaces/ci/pods");
        assert_eq!(pods.item_path("wp-1"), "/api/v1/namespaces/ci/pods/wp-1");
        let all: Api<Pod> = Api::all(client());
        assert_eq!(all.collection_path(None), "/api/v1/pods");
        let ns: Api<Namespace> = Api::all(client());
        assert_eq!(ns.item_path("ci"), "/api/v1/namespaces/ci");
        assert_eq!(Api::<Pod>::default_namespaced(client()).namespace(), Some("default"));
    }

    #[tokio::test]
    async fn create_without_a_namespace_is_refused_before_sending() {
        let all: Api<Pod> = Api::all(client());
        let err = all.create(&Pod::default()).await.unwrap_err();
        assert!(err.to_string().contains("no namespace"), "{err}");
    }
}
