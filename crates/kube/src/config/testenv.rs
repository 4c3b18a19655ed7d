//! An in-memory [`Env`] for unit tests: variables, a home directory and files in a map, so no
//! test touches the process environment. Test-only.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use super::Env;

pub const CA_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/ca.crt");
pub const CERT_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-rsa.crt");
pub const EC_CERT_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-ec.crt");
pub const PKCS8_CERT_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-pkcs8.crt");
pub const RSA_KEY_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-rsa.key");
pub const EC_KEY_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-ec.key");
pub const V1_CERT_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-v1.crt");
pub const V1_KEY_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-v1.key");
pub const PKCS8_KEY_PEM: &str = include_str!("../../../../testdata/kubeconfigs/pki/client-pkcs8.key");

#[derive(Debug, Clone, Default)]
pub struct TestEnv {
    vars: HashMap<String, String>,
    home: Option<PathBuf>,
    files: HashMap<PathBuf, Vec<u8>>,
    sa_dir: Option<PathBuf>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::default()
    }

    pub fn var(mut self, name: &str, value: &str) -> TestEnv {
        self.vars.insert(name.into(), value.into());
        self
    }

    pub fn unset(mut self, name: &str) -> TestEnv {
        self.vars.remove(name);
        self
    }

    pub fn home(mut self, home: &str) -> TestEnv {
        self.home = Some(home.into());
        self
    }

    pub fn file(mut self, path: &str, text: &str) -> TestEnv {
        self.files.insert(path.into(), text.as_bytes().to_vec());
        self
    }

    pub fn remove(mut self, path: &str) -> TestEnv {
        self.files.remove(Path::new(path));
        self
    }

    pub fn sa_dir(mut self, dir: &str) -> TestEnv {
        self.sa_dir = Some(dir.into());
        self
    }
}

impl Env for TestEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }

    fn home_dir(&self) -> Option<PathBuf> {
        self.home.clone()
    }

    fn read_file(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let bytes = self
            .files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))?;
        super::check_bound(bytes, limit)
    }

    fn service_account_dir(&self) -> PathBuf {
        self.sa_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(super::incluster::SERVICE_ACCOUNT_DIR))
    }
}

/// base64 of a PEM text, for `-data` fields.
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
