//! HTTP handlers: parse, call the vault, answer. No decision is made here.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod credentials;
pub mod data;
pub mod exports;
pub mod governance;
pub mod incidents;
pub mod lockbox;
