//! Integration tests for strongroom-ledger (one binary; see the modules).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod frontier;
mod naive;
mod notes;
mod props;
mod vectors;
