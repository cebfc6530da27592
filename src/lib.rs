//! backflow: a passive network sensor for traffic that flows the wrong way.
//!
//! The engine is a pipeline of stages, one module each:
//! - [`capture`]: packet sources (pcap/pcapng files, standard input, live
//!   interfaces with the `live` feature) producing timestamped frames;
//! - [`decode`]: frames to borrowed protocol views plus decode events;
//! - [`flow`]: per-worker flow tables, TCP state per RFC 793 with Zeek-style
//!   `conn_state`/`history`, timeouts and memory caps in packet time;
//! - [`output`]: EVE JSON records (Suricata's field names) and their sinks;
//! - [`pipeline`]: the threads that tie them together (one source, N
//!   workers each owning a shard of the flows, one output writer).
//!
//! The engine never reads the wall clock: all time is packet time.

#![deny(unsafe_code)]

pub mod cache;
pub mod capture;
pub mod config;
pub mod decode;
pub mod detect;
pub mod flow;
pub mod memory;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod stats;
pub mod time;
pub mod traffic;
