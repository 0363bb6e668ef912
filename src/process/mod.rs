//! process: one deduplicated listing state from both platforms (`roomstream process`).
//!
//! Consumes `observed.v1` and `sweeps.v1` in one consumer group (partitions keyed by region, so one
//! instance owns whole regions) and reads `brokers.v1` whole; publishes `listings.v1` and `dlq.v1`.
//! Each input passes the stages in flow order:
//!
//! 1. [`normalize`] — every payload format → one [`model::SourceListing`]; junk → DLQ;
//! 2. [`detect`] — new / changed / unchanged / removed (K missed sweeps) / relisted, price history;
//! 3. [`resolve`] — the same flat on two sites (or twice on one) → one canonical listing, with evidence
//!    (its candidates from the map-cell index in `candidates`);
//! 4. [`verify`] — the broker against the registry;
//! 5. [`score`] — components, total, bait risk and explanation, by `queries/score.sql` in DataFusion,
//!    per micro-batch for the listings whose inputs changed;
//! 6. [`publish`] — the canonical listing, only when its content (score included) changed.
//!
//! [`engine`] runs the stages on in-memory state, one [`partition`] at a time (with [`fingerprint`]'s
//! digests and [`vecmap`]'s small collections) (no I/O; the benchmark and the unit tests drive it
//! directly); [`runtime`] runs the engine on Kafka (with [`readers`] for whole topics) with [`checkpoint`]s in the object store and
//! [`metrics`]; [`state`] and [`eval`] read the checkpoints back after the processor stops.
//!
//! Invariants (DESIGN.md): a source listing's state is a function of the *set* of inputs seen, so
//! duplicated, late or re-ordered delivery never regresses it and every replay, restart or instance
//! count ends in the same state hash; every bad input reaches the DLQ with its position and reason.

mod candidates;
pub mod checkpoint;
pub mod detect;
pub mod engine;
pub mod eval;
pub mod fingerprint;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod partition;
pub mod publish;
pub mod readers;
pub mod resolve;
pub mod runtime;
pub mod score;
pub mod state;
pub mod vecmap;
pub mod verify;
