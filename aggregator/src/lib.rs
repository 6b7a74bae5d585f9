//! Fleet aggregator: merges collector deltas into ClickHouse.
//!
//! Not built yet: the single-host path (`sandmine mine`) needs no
//! aggregator. The crate exists so that the workspace layout is the one the
//! fleet version will have; see `docs/ARCHITECTURE.md`.
