//! Output: EVE records and the sinks that deliver them.
//!
//! Workers serialize their own records (flow, anomaly, alert) into
//! [`eve::EveBatch`]es; one output thread merges stats snapshots and writes
//! every batch to the sinks in arrival order.

pub mod community_id;
pub mod eve;
pub mod json;
pub mod net;
pub mod sink;
