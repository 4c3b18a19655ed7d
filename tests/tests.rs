//! Integration tests, built as one binary. One line per submodule says what it covers.

// Smoke: the binary's top-level commands.
mod cli;
