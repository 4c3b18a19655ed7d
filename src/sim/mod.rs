//! The simulated cluster: an in-process Kubernetes apiserver and kubelet, faithful enough that
//! the real kubectl works against it. The harness for our tests and `exec --embedded`.
