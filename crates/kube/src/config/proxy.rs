//! The proxy from the environment, used when a cluster sets no `proxy-url` (client-go's
//! transport does the same through Go's `http.ProxyFromEnvironment` with CIDR-aware
//! `NO_PROXY`). Knows nothing of kubeconfig files; reads only through [`Env`].
//!
//! Rules (Go `golang.org/x/net/http/httpproxy`): `HTTPS_PROXY`/`https_proxy` for https
//! servers, `HTTP_PROXY`/`http_proxy` for http ones; `localhost` and loopback addresses are
//! never proxied; `NO_PROXY`/`no_proxy` is a comma list of `*`, IP addresses, CIDR ranges and
//! domain names (`foo.com` matches it and its subdomains, `.foo.com` and `*.foo.com` only
//! subdomains), each optionally with `:port`. A proxy value without a scheme is `http://`.

use std::net::IpAddr;

use super::{ConfigError, Env};

/// The proxy to use for `server`, if the environment names one and `NO_PROXY` does not
/// exclude the server.
pub fn from_env(env: &impl Env, server: &http::Uri) -> Result<Option<http::Uri>, ConfigError> {
    let https = server.scheme_str() == Some("https");
    let names: [&'static str; 2] = if https {
        ["HTTPS_PROXY", "https_proxy"]
    } else {
        ["HTTP_PROXY", "http_proxy"]
    };
    let Some((var, raw)) = names
        .iter()
        .find_map(|&n| env.var(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
    else {
        return Ok(None);
    };
    let host = server
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = server.port_u16().unwrap_or(if https { 443 } else { 80 });
    if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return Ok(None);
    }
    let no_proxy = env
        .var("NO_PROXY")
        .filter(|v| !v.is_empty())
        .or_else(|| env.var("no_proxy"))
        .unwrap_or_default();
    if bypass(&no_proxy, &host, port) {
        return Ok(None);
    }
    // Never echo the value: it may carry a password.
    let err = |problem: &str| ConfigError::ProxyEnv {
        var,
        problem: problem.to_owned(),
    };
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let uri: http::Uri = with_scheme.parse().map_err(|_| err("is not a valid URL"))?;
    if uri.scheme_str() != Some("http") {
        return Err(err(
            "is not an http:// proxy; only HTTP CONNECT proxies are supported (exclude the \
             cluster with NO_PROXY or set the cluster's proxy-url)",
        ));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(err("has no host"));
    }
    Ok(Some(uri))
}

/// Whether a `NO_PROXY` list excludes `host` (lower case, no brackets) on `port`.
pub fn bypass(no_proxy: &str, host: &str, port: u16) -> bool {
    let host_ip = host.parse::<IpAddr>().ok();
    for entry in no_proxy.split(',') {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return true;
        }
        if let Some((net, bits)) = entry.split_once('/') {
            if let (Some(ip), Ok(net), Ok(bits)) = (host_ip, net.parse::<IpAddr>(), bits.parse())
                && in_cidr(ip, net, bits)
            {
                return true;
            }
            continue;
        }
        let (name, entry_port) = split_port(&entry);
        if entry_port.is_some_and(|p| p != port) {
            continue;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            if host_ip == Some(ip) {
                return true;
            }
            continue;
        }
        let name = name.strip_prefix('*').unwrap_or(name);
        let matched = match name.strip_prefix('.') {
            Some(_) => host.ends_with(name),
            None => host == name || host.ends_with(&format!(".{name}")),
        };
        if matched {
            return true;
        }
    }
    false
}

/// `host:port` -> (`host`, port); `[v6]:port` and bare IPv6 literals handled.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (entry, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testenv::TestEnv;

    fn uri(s: &str) -> http::Uri {
        s.parse().unwrap()
    }

    #[test]
    fn scheme_picks_the_variable_and_lower_case_works() {
        let env = TestEnv::new()
            .var("HTTPS_PROXY", "proxy.corp:3128")
            .var("http_proxy", "http://plain:8080");
        let p = from_env(&env, &uri("https://k.example:6443")).unwrap().unwrap();
        assert_eq!(p.to_string(), "http://proxy.corp:3128/");
        let p = from_env(&env, &uri("http://k.example:8080")).unwrap().unwrap();
        assert_eq!(p.to_string(), "http://plain:8080/");
        assert!(from_env(&TestEnv::new(), &uri("https://k")).unwrap().is_none());
    }

    #[test]
    fn loopback_is_never_proxied() {
        let env = TestEnv::new().var("HTTPS_PROXY", "http://p:1");
        for server in ["https://localhost:6443", "https://127.0.0.1:6443", "https://[::1]:6443"] {
            assert!(from_env(&env, &uri(server)).unwrap().is_none(), "{server}");
        }
    }

    #[test]
    fn no_proxy_forms() {
        let list = "*.corp.example, .svc, kubernetes, 10.96.0.0/12, fd00::/8, 192.168.1.5, api.x:6443";
        for (host, port, want) in [
            ("a.corp.example", 443, true),
            ("corp.example", 443, false),
            ("kubernetes.default.svc", 443, true),
            ("svc", 443, false),
            ("kubernetes", 443, true),
            ("sub.kubernetes", 443, true),
            ("notkubernetes", 443, false),
            ("10.96.0.1", 443, true),
            ("10.112.0.1", 443, false),
            ("fd00:10:96::1", 443, true),
            ("192.168.1.5", 443, true),
            ("192.168.1.6", 443, false),
            ("api.x", 6443, true),
            ("api.x", 443, false),
        ] {
            assert_eq!(bypass(list, host, port), want, "{host}:{port}");
        }
        assert!(bypass(" * ", "anything", 1));
        assert!(!bypass("", "anything", 1));
    }

    #[test]
    fn no_proxy_excludes_and_bad_values_never_echo() {
        let env = TestEnv::new()
            .var("HTTPS_PROXY", "socks5://user:sekrit@p:1080")
            .var("NO_PROXY", "10.0.0.0/8");
        assert!(from_env(&env, &uri("https://10.1.2.3:6443")).unwrap().is_none());
        let err = from_env(&env, &uri("https://k.example")).unwrap_err().to_string();
        assert!(
            err.starts_with("environment variable `HTTPS_PROXY` is not an http:// proxy"),
            "{err}"
        );
        assert!(!err.contains("sekrit"), "{err}");
    }
}
