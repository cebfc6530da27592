//! FTP control sessions, so that the data connections they negotiate are
//! not mistaken for policy violations (what a firewall's FTP helper does).
//!
//! Passive FTP (RFC 959 PASV, RFC 2428 EPSV) opens each data connection from
//! the client to a high port of the server; active FTP (PORT/EPRT) from the
//! server (port 20 or an ephemeral port) to a high port of the client. The
//! ports are negotiated inside the control connection, which backflow does
//! not parse: a connection to or from a port >= 1024 between two hosts that
//! completed a control handshake on tcp/21 within `ttl` is related to it.

use super::bounded::{BoundedMap, Expiring};
use crate::decode::Addr;
use crate::time::{Micros, Timestamp};

/// The control port.
pub const FTP_CONTROL: u16 = 21;

struct Seen(Timestamp);

impl Expiring for Seen {
    fn last_seen(&self) -> Timestamp {
        self.0
    }
}

/// Host pairs with a recent FTP control session, in either direction.
/// Bounded by `max_tracked` pairs, each forgotten `ttl` after its last
/// control handshake; at the cap new pairs are not tracked (their data
/// connections are then judged like any other).
pub struct FtpSessions {
    pairs: BoundedMap<(Addr, Addr), Seen>,
}

fn pair(a: Addr, b: Addr) -> (Addr, Addr) {
    if a <= b { (a, b) } else { (b, a) }
}

impl FtpSessions {
    pub fn new(cap: usize, max_bytes: usize, ttl: Micros) -> Self {
        FtpSessions {
            pairs: BoundedMap::new(cap, max_bytes, ttl),
        }
    }

    /// A handshake completed from `client` to `server:port`.
    pub fn on_handshake(&self, client: Addr, server: Addr, port: u16, now: Timestamp) {
        if port == FTP_CONTROL {
            self.pairs
                .update(&pair(client, server), now, || Seen(now), |s| s.0 = now);
        }
    }

    /// Whether a connection between `a` and `b` to port `port` is an FTP
    /// data connection of a control session between them.
    pub fn is_data(&self, a: Addr, b: Addr, port: u16) -> bool {
        port >= 1024 && self.pairs.with_existing(&pair(a, b), |_| ()).is_some()
    }

    /// Sessions remembered for an hour, as the detectors' are.
    #[cfg(test)]
    pub fn for_tests() -> std::sync::Arc<FtpSessions> {
        std::sync::Arc::new(FtpSessions::new(100, usize::MAX, Micros::from_secs(3600)))
    }

    pub fn sweep(&self, now: Timestamp) {
        self.pairs.sweep(now);
    }

    pub fn usage(&self) -> super::Usage {
        self.pairs.usage()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::decode::a;

    #[test]
    fn data_connections_follow_a_control_session_either_way() {
        let f = FtpSessions::new(10, usize::MAX, Micros::from_secs(3600));
        let (c, s) = (a("192.0.2.97"), a("172.16.5.21"));
        assert!(!f.is_data(c, s, 50123), "no control session yet");
        f.on_handshake(c, s, 80, Timestamp(1));
        assert!(!f.is_data(c, s, 50123), "not ftp");
        f.on_handshake(c, s, 21, Timestamp(2));
        assert!(f.is_data(c, s, 50123), "passive: client to server");
        assert!(f.is_data(s, c, 40001), "active: server back to client");
        assert!(!f.is_data(c, s, 22), "a low port is not a data port");
        assert!(!f.is_data(c, a("172.16.5.22"), 50123), "another host");
        let v6 = (a("2001:db8::1"), a("fd00::21"));
        f.on_handshake(v6.0, v6.1, 21, Timestamp(3));
        assert!(f.is_data(v6.0, v6.1, 60000), "ipv6");
    }
}
