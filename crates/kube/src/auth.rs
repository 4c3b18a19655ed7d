//! Credentials at run time: a static token, a token file re-read about once a minute (keeping
//! the last good token when a read fails), basic auth, and exec plugins whose output is cached
//! until `expirationTimestamp` and refreshed after a 401.
//!
//! Knows nothing of how configuration was found (that is `kube::config`) or of HTTP requests
//! beyond the `Authorization` header.
//!
//! How the transport uses [`Credentials`]:
//! - before each request, `authorization().await` gives the header to set (marked sensitive),
//!   or `None` for anonymous and certificate-only users;
//! - after a 401, `invalidate()`, then retry once: the next call re-reads the token file or
//!   re-runs the exec plugin;
//! - exec plugins may return a client certificate instead of (or beside) a token. Call
//!   `authorization()` first (it runs the plugin when needed), then
//!   [`Credentials::exec_client_identity`] gives the current certificate and key, and
//!   [`Credentials::exec_cert_resolver`] is a rustls `ResolvesClientCert` that asks for it at
//!   each handshake, so renewed certificates are used on new connections (drop pooled
//!   connections after `invalidate()`, as client-go does).

mod identity;

pub use identity::{ExecCertResolver, certified_key};

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::HeaderValue;
use tokio::time::Instant;

use crate::config::exec::{self, ExecCredential};
use crate::config::{AuthConfig, ExecConfig};
use crate::secret::Secret;

/// How long a token read from a file is trusted before the file is read again (client-go
/// `NewCachedFileTokenSource`: one minute, half the gap between kubelet refresh and expiry).
pub const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);

/// What a wall clock is for exec expiry; injectable for tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A failure to produce credentials. Never holds a token, password or key.
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthError {
    /// The token file could not be read and there is no earlier token to fall back on.
    ReadTokenFile {
        path: PathBuf,
        source: io::Error,
    },
    EmptyTokenFile {
        path: PathBuf,
    },
    /// The token or username holds bytes an HTTP header cannot carry.
    InvalidHeader {
        what: &'static str,
    },
    /// The plugin's command does not exist; the install hint says how to get it.
    ExecNotFound {
        command: String,
        install_hint: Option<String>,
        source: io::Error,
    },
    ExecSpawn {
        command: String,
        source: io::Error,
    },
    ExecTimeout {
        command: String,
    },
    ExecFailed {
        command: String,
        status: ExitStatus,
        /// The end of the plugin's stderr.
        stderr: String,
    },
    ExecOutput {
        command: String,
        problem: String,
    },
    /// `interactiveMode: Always` needs a terminal the agent does not have.
    ExecInteractive {
        command: String,
    },
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::ReadTokenFile { path, .. } => {
                write!(f, "token file `{}` cannot be read", path.display())
            }
            AuthError::EmptyTokenFile { path } => {
                write!(f, "token file `{}` is empty", path.display())
            }
            AuthError::InvalidHeader { what } => {
                write!(f, "the {what} holds characters an HTTP header cannot carry")
            }
            AuthError::ExecNotFound {
                command, install_hint, ..
            } => {
                write!(f, "exec credential plugin `{command}` was not found")?;
                match install_hint {
                    Some(hint) => write!(f, "; {}", hint.trim()),
                    None => Ok(()),
                }
            }
            AuthError::ExecSpawn { command, .. } => {
                write!(f, "exec credential plugin `{command}` could not be run")
            }
            AuthError::ExecTimeout { command } => write!(
                f,
                "exec credential plugin `{command}` did not finish within {} s",
                exec::PLUGIN_TIMEOUT.as_secs()
            ),
            AuthError::ExecFailed {
                command,
                status,
                stderr,
            } => {
                write!(f, "exec credential plugin `{command}` failed ({status})")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            AuthError::ExecOutput { command, problem } => {
                write!(f, "exec credential plugin `{command}` {problem}")
            }
            AuthError::ExecInteractive { command } => write!(
                f,
                "exec credential plugin `{command}` has `interactiveMode: Always`, but the agent \
                 has no terminal; use IfAvailable or Never"
            ),
        }
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthError::ReadTokenFile { source, .. }
            | AuthError::ExecNotFound { source, .. }
            | AuthError::ExecSpawn { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A client certificate and key returned by an exec plugin (PEM).
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub certificate_pem: Vec<u8>,
    pub key_pem: Secret,
}

/// Run-time credentials for one configuration. Cheap to clone; clones share caches.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner.source {
            Source::None => "none",
            Source::Static(_) => "static",
            Source::File(_) => "token-file",
            Source::Exec(_) => "exec",
        };
        f.debug_struct("Credentials")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

struct Inner {
    source: Source,
    clock: Clock,
}

// One per Credentials, behind an Arc: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Source {
    None,
    Static(HeaderValue),
    File(FileToken),
    Exec(ExecAuth),
}

struct FileToken {
    path: PathBuf,
    /// `token` written beside `tokenFile`: used while the file cannot be read.
    fallback: Option<Secret>,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    token: Option<Secret>,
    read_at: Option<Instant>,
}

struct ExecAuth {
    config: ExecConfig,
    /// Serialises plugin runs, so concurrent requests run the plugin once.
    running: tokio::sync::Mutex<()>,
    cached: Mutex<Option<Cached>>,
    /// Bumped by `invalidate`; a cached credential from an older generation is stale.
    generation: AtomicU64,
}

struct Cached {
    credential: ExecCredential,
    generation: u64,
}

impl Credentials {
    pub fn new(auth: &AuthConfig) -> Result<Credentials, AuthError> {
        Self::with_clock(auth, Arc::new(SystemTime::now))
    }

    /// Like [`Credentials::new`] with the wall clock used for exec expiry replaced.
    pub fn with_clock(auth: &AuthConfig, clock: Clock) -> Result<Credentials, AuthError> {
        let file = |path: &PathBuf, fallback: Option<Secret>| {
            Source::File(FileToken {
                path: path.clone(),
                fallback,
                state: Mutex::new(FileState::default()),
            })
        };
        let source = match auth {
            AuthConfig::None | AuthConfig::ClientCertificate => Source::None,
            AuthConfig::Token(token) => Source::Static(bearer(token.expose())?),
            AuthConfig::Basic { username, password } => Source::Static(basic(username, password.expose())?),
            AuthConfig::TokenFile(path) | AuthConfig::InCluster { token_file: path } => file(path, None),
            AuthConfig::TokenFileWithFallback { token_file, token } => file(token_file, Some(token.clone())),
            AuthConfig::Exec(config) => Source::Exec(ExecAuth {
                config: config.clone(),
                running: tokio::sync::Mutex::new(()),
                cached: Mutex::new(None),
                generation: AtomicU64::new(0),
            }),
        };
        Ok(Credentials {
            inner: Arc::new(Inner { source, clock }),
        })
    }

    /// The `Authorization` header for the next request (marked sensitive), if any.
    pub async fn authorization(&self) -> Result<Option<HeaderValue>, AuthError> {
        match &self.inner.source {
            Source::None => Ok(None),
            Source::Static(header) => Ok(Some(header.clone())),
            Source::File(file) => file.token().await.and_then(|t| bearer(t.expose())).map(Some),
            Source::Exec(exec) => {
                let credential = exec.credential(&self.inner.clock).await?;
                match &credential.token {
                    Some(token) => bearer(token.expose()).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// Forgets cached credentials after a 401: the next call re-reads the token file or
    /// re-runs the exec plugin.
    pub fn invalidate(&self) {
        match &self.inner.source {
            Source::File(file) => file.state.lock().expect("token state").read_at = None,
            Source::Exec(exec) => {
                exec.generation.fetch_add(1, Ordering::SeqCst);
            }
            Source::None | Source::Static(_) => {}
        }
    }

    /// True when an exec plugin provides the credentials (and so maybe a client certificate).
    pub fn uses_exec(&self) -> bool {
        matches!(self.inner.source, Source::Exec(_))
    }

    /// For exec plugins, a client-certificate resolver to install in the rustls config
    /// (`with_client_cert_resolver`); `None` for every other kind of credential.
    pub fn exec_cert_resolver(&self) -> Option<Arc<dyn rustls::client::ResolvesClientCert>> {
        self.uses_exec()
            .then(|| Arc::new(ExecCertResolver::new(self.clone())) as Arc<_>)
    }

    /// The client certificate and key of the last exec credential, if it carried them.
    pub fn exec_client_identity(&self) -> Option<ClientIdentity> {
        let Source::Exec(exec) = &self.inner.source else {
            return None;
        };
        let cached = exec.cached.lock().expect("exec cache");
        let credential = &cached.as_ref()?.credential;
        Some(ClientIdentity {
            certificate_pem: credential.client_certificate_pem.clone()?,
            key_pem: credential.client_key_pem.clone()?,
        })
    }
}

impl FileToken {
    async fn token(&self) -> Result<Secret, AuthError> {
        {
            let state = self.state.lock().expect("token state");
            if let (Some(token), Some(at)) = (&state.token, state.read_at)
                && at.elapsed() < TOKEN_FILE_REFRESH
            {
                return Ok(token.clone());
            }
        }
        let read = match read_bounded(&self.path, crate::config::MAX_TOKEN_BYTES).await {
            Ok(bytes) => {
                let token = String::from_utf8_lossy(&bytes).trim().to_owned();
                if token.is_empty() {
                    Err(AuthError::EmptyTokenFile {
                        path: self.path.clone(),
                    })
                } else {
                    Ok(Secret::new(token))
                }
            }
            Err(source) => Err(AuthError::ReadTokenFile {
                path: self.path.clone(),
                source,
            }),
        };
        let mut state = self.state.lock().expect("token state");
        match read {
            Ok(token) => {
                state.token = Some(token.clone());
                state.read_at = Some(Instant::now());
                Ok(token)
            }
            // client-go keeps the last good token when a re-read fails (kubernetes#68164) and
            // tries the file again on the next request.
            Err(err) => match state.token.clone().or_else(|| self.fallback.clone()) {
                Some(token) => Ok(token),
                None => Err(err),
            },
        }
    }
}

impl ExecAuth {
    fn fresh(&self, clock: &Clock) -> Option<ExecCredential> {
        let cached = self.cached.lock().expect("exec cache");
        let cached = cached.as_ref()?;
        let current = cached.generation == self.generation.load(Ordering::SeqCst);
        let unexpired = cached.credential.expires_at.is_none_or(|at| clock() < at);
        (current && unexpired).then(|| cached.credential.clone())
    }

    async fn credential(&self, clock: &Clock) -> Result<ExecCredential, AuthError> {
        if let Some(credential) = self.fresh(clock) {
            return Ok(credential);
        }
        let _running = self.running.lock().await;
        // Another request may have run the plugin while we waited.
        if let Some(credential) = self.fresh(clock) {
            return Ok(credential);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let credential = exec::run(&self.config).await?;
        *self.cached.lock().expect("exec cache") = Some(Cached {
            credential: credential.clone(),
            generation,
        });
        Ok(credential)
    }
}

fn bearer(token: &str) -> Result<HeaderValue, AuthError> {
    sensitive(format!("Bearer {}", token.trim()), "token")
}

fn basic(username: &str, password: &str) -> Result<HeaderValue, AuthError> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    sensitive(format!("Basic {encoded}"), "username or password")
}

fn sensitive(value: String, what: &'static str) -> Result<HeaderValue, AuthError> {
    let mut header = HeaderValue::from_str(&value).map_err(|_| AuthError::InvalidHeader { what })?;
    header.set_sensitive(true);
    Ok(header)
}

/// A token file of at most `limit` bytes (`tokenFile: /dev/zero` stops after `limit + 1`).
async fn read_bounded(path: &std::path::Path, limit: u64) -> io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut bytes = Vec::new();
    tokio::fs::File::open(path)
        .await?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .await?;
    crate::config::check_bound(bytes, limit)
}

#[cfg(test)]
mod tests;
