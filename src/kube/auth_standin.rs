//! TEMPORARY stand-in for `kube::auth::Credentials` (owned by the config helper) so the
//! transport can be built and tested before that lands: static token, token file (re-read on
//! every request after an invalidate), basic auth, none. Same seam: `authorization()` and
//! `invalidate()`. Replaced by `kube::auth` on merge.

use std::sync::Mutex;

use base64::Engine;
use http::HeaderValue;

use super::config::AuthConfig;
use crate::Secret;

#[derive(Debug)]
pub struct AuthError(pub String);

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for AuthError {}

#[derive(Debug)]
pub struct Credentials {
    auth: AuthConfig,
    cached: Mutex<Option<Secret>>,
}

impl Credentials {
    pub fn new(auth: &AuthConfig) -> Result<Credentials, AuthError> {
        if let AuthConfig::Exec(exec) = auth {
            return Err(AuthError(format!(
                "exec plugin {:?} is not supported yet",
                exec.command
            )));
        }
        Ok(Credentials {
            auth: auth.clone(),
            cached: Mutex::new(None),
        })
    }

    pub async fn authorization(&self) -> Result<Option<HeaderValue>, AuthError> {
        let value = match &self.auth {
            AuthConfig::Token(t) => format!("Bearer {}", t.expose()),
            AuthConfig::TokenFile(path) | AuthConfig::InCluster { token_file: path } => {
                let mut cached = self.cached.lock().unwrap();
                if cached.is_none() {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| AuthError(format!("reading token file {}: {e}", path.display())))?;
                    *cached = Some(Secret::new(text.trim()));
                }
                format!("Bearer {}", cached.as_ref().map(Secret::expose).unwrap_or_default())
            }
            AuthConfig::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
            }
            _ => return Ok(None),
        };
        let mut header = HeaderValue::from_str(&value)
            .map_err(|_| AuthError("the credential is not a valid header value".into()))?;
        header.set_sensitive(true);
        Ok(Some(header))
    }

    pub fn invalidate(&self) {
        *self.cached.lock().unwrap() = None;
    }
}
