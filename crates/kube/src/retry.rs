//! When to retry a request and how long to wait: the policy (client-go's rules) and a
//! jittered exponential backoff. Pure: decisions take the outcome and return a delay; the
//! transport does the sleeping.
//!
//! - A reply with 429 or any 5xx is retried only when it carries an integer `Retry-After`
//!   (client-go `rest/with_retry.go`); the wait is that many seconds, capped.
//! - A transport error is retried only for GET (reads, watches, logs are idempotent; a POST
//!   might have been applied, so creates rely on fixed names + AlreadyExists instead).
//! - A request that never reached the server is retried for every verb, as Go's transport
//!   does (`nothingWrittenError`): connecting failed, or a reused pooled connection was
//!   closed by the server before a byte of the reply (it closed it right after the last reply).
//! - A TLS verification failure is final: the same certificate fails the same way.
//! - Attempts are bounded.

use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries per request, the first included.
    pub max_attempts: u32,
    /// Upper bound on a single `Retry-After` wait.
    pub max_retry_after: Duration,
    /// Backoff between transport-error retries.
    pub backoff: BackoffConfig,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_retry_after: Duration::from_secs(30),
            backoff: BackoffConfig {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
            },
        }
    }
}

/// What happened to one attempt, as far as the retry decision cares.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Reply {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    TransportError,
    /// Nothing reached the server (see the module doc): safe to retry for every verb.
    NotSent,
    /// Retrying cannot help (a TLS verification failure).
    Final,
}

impl RetryPolicy {
    /// The delay before the next attempt, or `None` to give up. `attempt` counts from 1.
    pub fn decide(&self, method: &Method, attempt: u32, outcome: Outcome, backoff: &mut Backoff) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        match outcome {
            Outcome::Reply {
                status,
                retry_after: Some(after),
            } if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
                Some(after.min(self.max_retry_after))
            }
            Outcome::Reply { .. } => None,
            Outcome::TransportError if method == Method::GET => Some(backoff.next_delay()),
            Outcome::TransportError => None,
            Outcome::NotSent => Some(backoff.next_delay()),
            Outcome::Final => None,
        }
    }
}

/// `Retry-After` as whole seconds (the only form the apiserver sends; client-go ignores dates).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

#[derive(Debug, Clone, Copy)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
}

impl BackoffConfig {
    /// The watch reconnect backoff of client-go's reflector: 800 ms doubling to 30 s.
    pub const WATCH: BackoffConfig = BackoffConfig {
        initial: Duration::from_millis(800),
        max: Duration::from_secs(30),
    };
}

/// Exponential backoff with "equal jitter": each delay is uniform in [d/2, d] where d doubles
/// from `initial` up to `max`. Half the delay stays so that many watchers restarting together
/// still spread out but never hammer the server with near-zero waits.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    current: Duration,
    rng: XorShift,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Self::with_seed(config, seed ^ (&config as *const _ as u64))
    }

    pub fn with_seed(config: BackoffConfig, seed: u64) -> Self {
        Backoff {
            config,
            current: config.initial,
            rng: XorShift(seed | 1),
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self.current;
        self.current = (self.current * 2).min(self.config.max);
        let half = d / 2;
        let nanos = half.as_nanos() as u64;
        let jitter = if nanos == 0 { 0 } else { self.rng.next() % (nanos + 1) };
        half + Duration::from_nanos(jitter)
    }

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.current = self.config.initial;
    }
}

/// xorshift64: enough randomness for jitter (and for the seeded decoder tests), no crate
/// needed. The seed must not be 0.
#[derive(Debug, Clone)]
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    #[cfg(test)]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, after: Option<u64>) -> Outcome {
        Outcome::Reply {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: after.map(Duration::from_secs),
        }
    }

    #[test]
    fn status_retries_need_retry_after() {
        let p = RetryPolicy::default();
        let mut b = Backoff::with_seed(p.backoff, 7);
        assert_eq!(
            p.decide(&Method::POST, 1, reply(429, Some(2)), &mut b),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            p.decide(&Method::GET, 1, reply(503, Some(1)), &mut b),
            Some(Duration::from_secs(1))
        );
        assert_eq!(p.decide(&Method::GET, 1, reply(429, None), &mut b), None);
        assert_eq!(p.decide(&Method::GET, 1, reply(500, None), &mut b), None);
        assert_eq!(p.decide(&Method::GET, 1, reply(404, Some(1)), &mut b), None);
        // Capped, and bounded in attempts.
        assert_eq!(
            p.decide(&Method::GET, 1, reply(429, Some(3600)), &mut b),
            Some(p.max_retry_after)
        );
        assert_eq!(
            p.decide(&Method::GET, p.max_attempts, reply(429, Some(1)), &mut b),
            None
        );
    }

    #[test]
    fn transport_errors_retry_only_gets() {
        let p = RetryPolicy::default();
        let mut b = Backoff::with_seed(p.backoff, 7);
        assert!(p.decide(&Method::GET, 1, Outcome::TransportError, &mut b).is_some());
        assert_eq!(p.decide(&Method::POST, 1, Outcome::TransportError, &mut b), None);
        assert_eq!(p.decide(&Method::DELETE, 1, Outcome::TransportError, &mut b), None);
    }

    #[test]
    fn unsent_requests_retry_for_every_verb_and_final_failures_never() {
        let p = RetryPolicy::default();
        let mut b = Backoff::with_seed(p.backoff, 7);
        for m in [Method::GET, Method::POST, Method::DELETE, Method::PATCH, Method::PUT] {
            assert!(p.decide(&m, 1, Outcome::NotSent, &mut b).is_some(), "{m}");
            assert_eq!(p.decide(&m, p.max_attempts, Outcome::NotSent, &mut b), None, "{m}");
            assert_eq!(p.decide(&m, 1, Outcome::Final, &mut b), None, "{m}");
        }
    }

    #[test]
    fn retry_after_header_is_whole_seconds() {
        let mut h = HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            http::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_within_bounds_and_resets() {
        let cfg = BackoffConfig::WATCH;
        let mut b = Backoff::with_seed(cfg, 42);
        let mut nominal = cfg.initial;
        for _ in 0..10 {
            let d = b.next_delay();
            assert!(
                d >= nominal / 2 && d <= nominal,
                "{d:?} outside [{:?}, {nominal:?}]",
                nominal / 2
            );
            nominal = (nominal * 2).min(cfg.max);
        }
        b.reset();
        assert!(b.next_delay() <= cfg.initial);
    }
}
