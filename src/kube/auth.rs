//! Credentials at run time: a static token, a token file re-read about once a minute (keeping
//! the last good token when a read fails), basic auth, and exec plugins whose output is cached
//! until `expirationTimestamp` and refreshed after a 401.
