//! roomstream: one deduplicated, scored, always-current state of every one-room listing in Korea.
//!
//! The data flows in one direction, and the modules follow it:
//!
//! 1. [`crawl`] — Zigbang, Dabang, the VWORLD broker registry, the real fixtures and the calibrated
//!    simulator put events on `observed.v1`, `sweeps.v1` and `brokers.v1`;
//! 2. [`process`] — normalize, detect, resolve, verify, score → `listings.v1`;
//! 3. [`sink`] — the production MySQL, Parquet on S3, the Redshift staging schema;
//! 4. [`api`] — the axum API and the web page, reading the production database only.
//!
//! Shared by every stage, and owned by none: [`config`] (profiles + environment), [`topics`] (names,
//! keys, envelopes and JSON Schemas of the topics — the only contract between stages), [`kafka`]
//! (client settings, the confirming producer), [`store`] (the object store), [`region`] (시군구 codes), [`rank`] (a person's
//! weights over the score components) and [`telemetry`].
//! A stage talks to a later one only through topics, never through its internals.
//! [`cli`] maps the `roomstream` subcommands onto these.

pub mod api;
pub mod cli;
pub mod config;
pub mod crawl;
pub mod kafka;
pub mod process;
pub mod rank;
pub mod region;
pub mod sink;
pub mod store;
pub mod telemetry;
pub mod topics;
