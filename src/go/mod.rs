//! Go's rules, in one place, wherever we read what a Go program (Woodpecker's server, its Go
//! agent's configuration) wrote: JSON as `encoding/json` decodes it.

pub mod json;
