//! Shared test helpers (`start_sim()` and friends).
