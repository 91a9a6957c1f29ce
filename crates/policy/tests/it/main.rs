//! Integration tests for the policy decision point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod administration;
mod cache;
mod common;
mod expected;
mod grants;
mod guardrails;
mod loading;
mod matrix;
mod vocabulary;
