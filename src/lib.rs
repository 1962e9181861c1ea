//! vhostd: Docker labels → nginx virtual hosts, with ACME certificates, in one daemon.
//!
//! # Layout
//! - pure core: [`host`], [`labels`], [`sites`], [`render`], [`desired`], [`quarantine`] (plus `acme`'s
//!   plan, schedule and backoff);
//! - I/O shell: [`docker`], [`nginx`], [`acme`], [`admin`], [`fsutil`];
//! - [`controller`]: the one task that owns state and reconciles.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]

pub mod acme;
pub mod admin;
pub mod app;
pub mod backoff;
pub mod certfacts;
pub mod config;
pub mod conflex;
pub mod controller;
pub mod debounce;
pub mod desired;
pub mod docker;
pub mod facts;
pub mod fsutil;
pub mod host;
pub mod labels;
pub mod metrics;
pub mod nginx;
pub mod nginx_version;
pub mod nginxfs;
pub mod nginxpaths;
pub mod nginxrun;
pub mod preflight;
pub mod quarantine;
pub mod render;
pub mod shape;
pub mod sites;
pub mod snippets;
pub mod status;
pub mod swarm;
pub mod testconf;
