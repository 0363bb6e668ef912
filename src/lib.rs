//! roomstream: one deduplicated, scored, always-current state of every one-room listing in Korea.
//!
//! The data flows in one direction, and the modules follow it:
//!
//! 1. [`crawl`] — Zigbang, Dabang, the VWORLD broker registry, the real fixtures and the calibrated
//!    simulator put events on `observed.v1`, `sweeps.v1` and `brokers.v1`;
//! 2. [`process`] — normalize, detect, resolve, verify, score → `listings.v1`;
//! 3. [`sink`] — the production MySQL, Parquet on S3, the Redshift staging schema;
//! 4. [`api`] — the axum API and the web page, reading the production database only;
//! 5. [`analytics`] — SQL (DataFusion) and SVG charts over the S3 sink's published Parquet, for
//!    analysts: `roomstream query` and `roomstream report`.
//!
//! Shared by every stage, and owned by none: [`config`] (profiles + environment), [`topics`] (names,
//! keys, envelopes and JSON Schemas of the topics — the only contract between stages), [`kafka`]
//! (client settings, the confirming producer), [`store`] (the object store), [`db`] (the production
//! database, MySQL or SQLite, that the MySQL sink writes and the API reads), [`region`] (시군구 codes), [`rank`] (a person's
//! weights over the score components), [`health`] (readiness and retries), [`http`] (the server loop
//! of every endpoint) and [`telemetry`].
//! A stage talks to a later one only through topics, never through its internals.
//! [`cli`] maps the `roomstream` subcommands onto these.

pub mod analytics;
pub mod api;
pub mod cli;
pub mod config;
pub mod crawl;
pub mod db;
pub mod fuzz;
pub mod health;
pub mod http;
pub mod kafka;
pub mod process;
pub mod rank;
pub mod region;
pub mod sink;
pub mod store;
pub mod telemetry;
pub mod topics;
