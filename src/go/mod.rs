//! Go's rules, in one place, wherever we read what a Go program (Woodpecker's server, its Go
//! agent's configuration) wrote or expects: JSON as `encoding/json` decodes it, durations as
//! `time.ParseDuration`, bools and ints as `strconv`, and log lines as zerolog writes them.

pub mod duration;
pub mod json;
pub mod strconv;
pub mod zerolog;
