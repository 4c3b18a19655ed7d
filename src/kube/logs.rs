//! TODO(owner: kube client)
