//! The one error type of configuration resolution. Every variant names the file, the
//! context/cluster/user and the field; `Display` says what failed and leaves the cause to
//! `source()`. No variant ever holds a secret value.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Which stanza of a kubeconfig a field belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Cluster(String),
    User(String),
    Context(String),
    /// A top-level field of the file.
    File,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Entry::Cluster(name) => write!(f, "cluster `{name}`"),
            Entry::User(name) => write!(f, "user `{name}`"),
            Entry::Context(name) => write!(f, "context `{name}`"),
            Entry::File => f.write_str("top level"),
        }
    }
}

type Cause = Box<dyn StdError + Send + Sync>;

#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A kubeconfig file that exists (or was named with `--kubeconfig`) could not be read.
    ReadKubeconfig {
        path: PathBuf,
        source: io::Error,
    },
    /// A kubeconfig file is not a valid kubeconfig document.
    ParseKubeconfig {
        path: PathBuf,
        source: Cause,
    },
    /// No kubeconfig file exists and we are not inside a cluster.
    NoConfiguration {
        tried: Vec<PathBuf>,
    },
    /// Neither `--context` nor `current-context` chose a context.
    NoContext {
        files: Vec<PathBuf>,
    },
    ContextNotFound {
        files: Vec<PathBuf>,
        context: String,
    },
    ClusterNotFound {
        files: Vec<PathBuf>,
        context: String,
        cluster: String,
    },
    /// The context names a user that no file defines (kubectl: `cannot locate user`).
    UserNotFound {
        files: Vec<PathBuf>,
        context: String,
        user: String,
    },
    /// One field of one stanza is wrong or names something unusable.
    Field {
        file: PathBuf,
        entry: Entry,
        field: &'static str,
        problem: String,
        source: Option<Cause>,
    },
    /// `HTTPS_PROXY`/`HTTP_PROXY` cannot be used (its value is never shown).
    ProxyEnv {
        var: &'static str,
        problem: String,
    },
    /// The in-cluster service account is incomplete or malformed.
    InCluster {
        what: String,
        problem: String,
        source: Option<io::Error>,
    },
}

impl ConfigError {
    pub(crate) fn field(
        file: &std::path::Path,
        entry: Entry,
        field: &'static str,
        problem: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Field {
            file: file.to_owned(),
            entry,
            field,
            problem: problem.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(mut self, cause: impl Into<Cause>) -> ConfigError {
        if let ConfigError::Field { source, .. } = &mut self {
            *source = Some(cause.into());
        }
        self
    }
}

fn paths(files: &[PathBuf]) -> String {
    let list: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    list.join(":")
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ReadKubeconfig { path, .. } => {
                write!(f, "kubeconfig `{}` cannot be read", path.display())
            }
            ConfigError::ParseKubeconfig { path, .. } => {
                write!(f, "kubeconfig `{}` is not a valid kubeconfig", path.display())
            }
            ConfigError::NoConfiguration { tried } => {
                f.write_str("no Kubernetes configuration: ")?;
                if tried.is_empty() {
                    f.write_str("no kubeconfig (HOME is not set)")?;
                } else {
                    write!(f, "no kubeconfig at `{}`", paths(tried))?;
                }
                f.write_str(
                    " and not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset or no \
                     service-account token); pass --kubeconfig or set KUBECONFIG",
                )
            }
            ConfigError::NoContext { files } => write!(
                f,
                "kubeconfig `{}`: no context chosen: `current-context` is not set; pass --context",
                paths(files)
            ),
            ConfigError::ContextNotFound { files, context } => {
                write!(f, "kubeconfig `{}`: context `{context}` is not defined", paths(files))
            }
            ConfigError::ClusterNotFound {
                files,
                context,
                cluster,
            } => {
                if cluster.is_empty() {
                    write!(
                        f,
                        "kubeconfig `{}`: context `{context}`: `cluster` is not set",
                        paths(files)
                    )
                } else {
                    write!(
                        f,
                        "kubeconfig `{}`: context `{context}`: cluster `{cluster}` is not defined",
                        paths(files)
                    )
                }
            }
            ConfigError::UserNotFound { files, context, user } => write!(
                f,
                "kubeconfig `{}`: context `{context}`: user `{user}` is not defined (kubectl: cannot \
                 locate user)",
                paths(files)
            ),
            ConfigError::Field {
                file,
                entry,
                field,
                problem,
                ..
            } => write!(f, "kubeconfig `{}`: {entry}: `{field}` {problem}", file.display()),
            ConfigError::ProxyEnv { var, problem } => {
                write!(f, "environment variable `{var}` {problem}")
            }
            ConfigError::InCluster { what, problem, .. } => {
                write!(f, "in-cluster configuration: {what} {problem}")
            }
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ConfigError::ReadKubeconfig { source, .. } => Some(source),
            ConfigError::ParseKubeconfig { source, .. } => Some(source.as_ref()),
            ConfigError::Field { source, .. } => source.as_deref().map(|s| s as _),
            ConfigError::InCluster { source, .. } => source.as_ref().map(|s| s as _),
            _ => None,
        }
    }
}
