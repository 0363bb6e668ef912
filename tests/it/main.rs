//! Integration tests: one binary, against the real broker (Tansu on 127.0.0.1:9092 unless
//! `ROOMSTREAM_KAFKA_BROKERS` says otherwise) and local HTTP servers standing in for the platforms.
//!
//! Every test gets its own namespace (`rs_<uuid>`), so its topics and groups are its own and tests run
//! in parallel. Tests that need the real fixtures (`../shared/fixtures/real`, or
//! `ROOMSTREAM_TEST_FIXTURES`) print `SKIP` and return where they are absent.

mod support;

mod analytics;
mod api;
mod bench;
mod compose;
mod crawl_dabang;
mod crawl_fixtures;
mod crawl_schedule;
mod crawl_synthetic;
mod crawl_vworld;
mod crawl_zigbang;
mod demo;
mod faults;
mod fuzz;
mod outage;
mod process;
mod score;
mod secrets;
mod sink;
mod topics;
mod web;
