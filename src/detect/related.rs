//! FTP control sessions, so that the data connections they negotiate are
//! not mistaken for policy violations (what a firewall's FTP helper does).
//!
//! Passive FTP (RFC 959 PASV, RFC 2428 EPSV) opens each data connection from
//! the client to a high port of the server; active FTP (PORT/EPRT) from the
//! server (port 20 or an ephemeral port) to a high port of the client. The
//! ports are negotiated inside the control connection: the server's `227`
//! and `229` replies, the client's `PORT` and `EPRT` commands.
//!
//! [`FtpSessions::negotiated`]: the control session between the two hosts
//! negotiated that port (one of the last [`PORTS_KEPT`]). Every connection
//! between two hosts is processed by one worker in packet order, so the
//! reply or command that negotiates a port has been read when its data
//! connection starts. Where the negotiation may have gone unread, every
//! port >= 1024 between the pair counts as negotiated: a capture that cut
//! control bytes (a snap length), or a control segment ending inside a
//! line that may negotiate (lines split across segments are not put back
//! together). [`FtpSessions::is_data`], looser: the pair has a control
//! session, so a high port between them may be a data port (not learned as
//! a service).

use super::bounded::{BoundedMap, Expiring};
use crate::decode::Addr;
use crate::time::{Micros, Timestamp};

/// The control port.
pub const FTP_CONTROL: u16 = 21;

/// Data ports a control session keeps: the last ones negotiated.
pub const PORTS_KEPT: usize = 8;

/// A pair's control session: when last seen, and the data ports negotiated.
struct Seen {
    at: Timestamp,
    ports: [u16; PORTS_KEPT],
    next: u8,
    /// Control bytes were sent and not captured (a snap length): a
    /// negotiation may have gone unread.
    blind: bool,
}

impl Seen {
    fn new(at: Timestamp) -> Self {
        Seen {
            at,
            ports: [0; PORTS_KEPT],
            next: 0,
            blind: false,
        }
    }

    fn negotiated(&mut self, port: u16) {
        if let Some(slot) = self.ports.get_mut(usize::from(self.next) % PORTS_KEPT) {
            *slot = port;
        }
        self.next = self.next.wrapping_add(1);
    }
}

impl Expiring for Seen {
    fn last_seen(&self) -> Timestamp {
        self.at
    }
}

/// The data port a line of the control connection negotiates: a client's
/// `PORT h1,h2,h3,h4,p1,p2` or `EPRT |af|addr|port|`, a server's
/// `227 ... (h1,h2,h3,h4,p1,p2)` or `229 ... (|||port|)`.
pub fn negotiated_port(line: &[u8], from_client: bool) -> Option<u16> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).ok()?;
    let verb = text.get(..4)?;
    let rest = text.get(4..)?;
    let six = |s: &str| -> Option<u16> {
        // The six numbers, wherever they start (RFC 1123 4.1.2.6); the
        // last two are the port.
        let start = s.find(|c: char| c.is_ascii_digit())?;
        let mut n = [0u16; 6];
        let mut fields = s.get(start..)?.split(',');
        for x in &mut n {
            let f = fields.next()?.trim();
            let digits = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
            *x = f.get(..digits)?.parse().ok()?;
        }
        let [.., hi, lo] = n;
        (hi < 256 && lo < 256).then_some(hi * 256 + lo)
    };
    let extended = |s: &str| -> Option<u16> {
        // |af|addr|port| with any delimiter: the port is the fourth field.
        let s = s.trim_start();
        let d = s.chars().next()?;
        s.split(d).nth(3)?.trim().parse().ok()
    };
    let port = if from_client {
        match verb.to_ascii_uppercase().as_str() {
            "PORT" => six(rest),
            "EPRT" => extended(rest),
            _ => None,
        }
    } else {
        match verb {
            "227 " => six(rest),
            "229 " => extended(rest.get(rest.find('(')? + 1..)?),
            _ => None,
        }
    }?;
    (port != 0).then_some(port)
}

/// Whether the start of a line may be the start of a line that negotiates a
/// port (empty: no line started).
fn may_negotiate(start: &[u8], from_client: bool) -> bool {
    let verbs: [&[u8]; 2] = if from_client {
        [b"PORT", b"EPRT"]
    } else {
        [b"227 ", b"229 "]
    };
    let n = start.len().min(4);
    n > 0
        && verbs
            .iter()
            .any(|v| matches!((v.get(..n), start.get(..n)), (Some(v), Some(s)) if v.eq_ignore_ascii_case(s)))
}

/// Whether control bytes read as text: no control character other than
/// tab, CR and LF (UTF-8 path names are text). A session secured with TLS
/// (`AUTH TLS`, or implicit) sends records that are not, and its
/// negotiations cannot be read.
fn is_text(payload: &[u8]) -> bool {
    payload
        .iter()
        .all(|&b| (b >= 0x20 && b != 0x7f) || matches!(b, b'\t' | b'\r' | b'\n'))
}

/// Host pairs with a recent FTP control session, in either direction.
/// Bounded by `max_tracked` pairs, each forgotten `ttl` after its last
/// control handshake or segment; at the cap new pairs are not tracked (their data
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
            self.pairs.update(
                &pair(client, server),
                now,
                || Seen::new(now),
                |s| s.at = now,
            );
        }
    }

    /// A segment of a control connection between `client` and `server`
    /// (from the client when `from_client`) at `now`: `payload` as
    /// captured, `len` bytes sent. Only for a pair whose control handshake
    /// was seen.
    pub fn on_control(
        &self,
        client: Addr,
        server: Addr,
        from_client: bool,
        payload: &[u8],
        len: u32,
        now: Timestamp,
    ) {
        self.pairs.with_existing(&pair(client, server), |s| {
            // A session in use is kept however long ago its handshake was.
            s.at = s.at.max(now);
            let mut lines = payload.split(|b| *b == b'\n');
            // After the last newline: a line the next segment goes on with.
            let unfinished = lines.next_back().unwrap_or(&[]);
            if payload.len() < len as usize
                || may_negotiate(unfinished, from_client)
                || !is_text(payload)
            {
                s.blind = true;
            }
            for line in lines {
                if let Some(port) = negotiated_port(line, from_client) {
                    s.negotiated(port);
                }
            }
        });
    }

    /// Whether a connection between `a` and `b` to port `port` may be an
    /// FTP data connection of a control session between them.
    pub fn is_data(&self, a: Addr, b: Addr, port: u16) -> bool {
        port >= 1024 && self.pairs.with_existing(&pair(a, b), |_| ()).is_some()
    }

    /// Whether a control session between `a` and `b` negotiated `port`.
    pub fn negotiated(&self, a: Addr, b: Addr, port: u16) -> bool {
        port >= 1024
            && self
                .pairs
                .with_existing(&pair(a, b), |s| s.blind || s.ports.contains(&port))
                .unwrap_or(false)
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
    fn data_connections_go_to_the_ports_their_control_session_negotiated() {
        let f = FtpSessions::new(10, usize::MAX, Micros::from_secs(3600));
        let (c, s) = (a("192.0.2.97"), a("172.16.5.21"));
        assert!(!f.negotiated(c, s, 50123), "no control session yet");
        f.on_handshake(c, s, 80, Timestamp(1));
        assert!(!f.negotiated(c, s, 50123), "not ftp");
        f.on_handshake(c, s, 21, Timestamp(2));
        assert!(!f.negotiated(c, s, 50123), "nothing negotiated yet");
        assert!(
            f.is_data(c, s, 50123) && f.is_data(s, c, 4444),
            "but it may be"
        );
        assert!(!f.is_data(c, s, 22), "not on a low port");
        let pasv = b"227 Entering Passive Mode (172,16,5,21,195,203).\r\n";
        f.on_control(c, s, false, pasv, pasv.len() as u32, Timestamp(0));
        assert!(f.negotiated(c, s, 50123), "passive: client to server");
        let port = b"TYPE I\r\nPORT 192,0,2,97,156,65\r\n";
        f.on_control(c, s, true, port, port.len() as u32, Timestamp(0));
        assert!(f.negotiated(s, c, 40001), "active: server back to client");
        assert!(!f.negotiated(s, c, 4444), "a port nobody negotiated");
        assert!(!f.negotiated(c, a("172.16.5.22"), 50123), "another host");
        let v6 = (a("2001:db8::1"), a("fd00::21"));
        f.on_handshake(v6.0, v6.1, 21, Timestamp(3));
        let epsv = b"229 Entering Extended Passive Mode (|||60000|)\r\n";
        f.on_control(v6.0, v6.1, false, epsv, epsv.len() as u32, Timestamp(0));
        let eprt = b"EPRT |2|2001:db8::1|60001|\r\n";
        f.on_control(v6.0, v6.1, true, eprt, eprt.len() as u32, Timestamp(0));
        assert!(f.negotiated(v6.0, v6.1, 60000) && f.negotiated(v6.1, v6.0, 60001));
        assert!(!f.negotiated(v6.0, v6.1, 60002));
    }

    /// Snap-length captures: control bytes sent and not kept. The pair's
    /// high ports are then taken as negotiated.
    #[test]
    fn a_control_session_cut_by_the_snap_length_relates_any_high_port() {
        let f = FtpSessions::new(10, usize::MAX, Micros::from_secs(3600));
        let (c, s) = (a("192.0.2.97"), a("172.16.5.21"));
        f.on_handshake(c, s, 21, Timestamp(2));
        f.on_control(c, s, false, b"", 0, Timestamp(0));
        assert!(!f.negotiated(c, s, 50123), "a bare ACK says nothing");
        f.on_control(c, s, false, b"", 48, Timestamp(0));
        assert!(f.negotiated(c, s, 50123) && f.negotiated(s, c, 40001));
        assert!(!f.negotiated(c, s, 22), "a low port is not a data port");
        // Part of a segment kept: what it holds is read, what was cut may
        // have negotiated any port.
        let (c, s) = (a("192.0.2.98"), a("172.16.5.21"));
        f.on_handshake(c, s, 21, Timestamp(3));
        f.on_control(c, s, false, b"220 ready\r\n", 11, Timestamp(0));
        assert!(!f.negotiated(c, s, 50123));
        f.on_control(c, s, false, b"227 Entering Pas", 48, Timestamp(0));
        assert!(f.negotiated(c, s, 50123));
    }

    /// Sessions remembered for an hour, and one control session in them.
    fn control_session() -> (FtpSessions, Addr, Addr) {
        let f = FtpSessions::new(10, usize::MAX, Micros::from_secs(3600));
        let (c, s) = (a("192.0.2.97"), a("172.16.5.21"));
        f.on_handshake(c, s, 21, Timestamp(2));
        (f, c, s)
    }

    /// A line that may negotiate a port, split across segments: its port
    /// is unknown, so the pair's high ports count as negotiated. Other
    /// lines split, or lines ended in their segment, say nothing.
    #[test]
    fn a_negotiation_split_across_segments_relates_any_high_port() {
        let (f, c, s) = control_session();
        let sent = |from_client: bool, text: &[u8]| {
            f.on_control(c, s, from_client, text, text.len() as u32, Timestamp(0));
        };
        sent(false, b"150 Opening BINARY mode data connection for f");
        sent(false, b"ile\r\n226 Transfer complete\r\n");
        sent(true, b"RETR some");
        sent(true, b"thing\r\n");
        assert!(!f.negotiated(c, s, 50123), "no negotiation cut");
        sent(false, b"230 Login successful.\r\n22");
        sent(false, b"7 Entering Passive Mode (172,16,5,21,195,203).\r\n");
        assert!(f.negotiated(c, s, 50123) && f.negotiated(c, s, 50124));
        let (c, s) = (a("192.0.2.98"), a("172.16.5.21"));
        f.on_handshake(c, s, 21, Timestamp(3));
        f.on_control(c, s, true, b"EP", 2, Timestamp(0));
        assert!(f.negotiated(c, s, 40000), "a client's EPRT cut");
        assert!(!f.negotiated(c, s, 1023), "a low port is not a data port");
    }

    /// A control session in use for longer than the time to live (a long
    /// batch of transfers) keeps its relation; an idle one is forgotten.
    #[test]
    fn a_session_in_use_outlives_the_time_to_live_of_its_handshake() {
        let ttl = Micros::from_secs(3600);
        let f = FtpSessions::new(10, usize::MAX, ttl);
        let (c, s) = (a("192.0.2.97"), a("172.16.5.21"));
        let (idle_c, idle_s) = (a("192.0.2.98"), a("172.16.5.21"));
        f.on_handshake(c, s, 21, Timestamp(0));
        f.on_handshake(idle_c, idle_s, 21, Timestamp(0));
        let pasv = b"227 Entering Passive Mode (172,16,5,21,195,203).\r\n";
        let mut now = Timestamp(0);
        for _ in 0..12 {
            now = now.saturating_add(Micros::from_secs(600));
            f.on_control(c, s, false, pasv, pasv.len() as u32, now);
            f.sweep(now);
        }
        assert!(f.negotiated(c, s, 50123), "in use for two hours");
        assert!(!f.is_data(idle_c, idle_s, 50123), "idle for two hours");
    }

    /// A control session that turns to TLS (`AUTH TLS`, then records that
    /// are not text): its negotiations are unreadable, so the pair's high
    /// ports count as negotiated. UTF-8 path names are text.
    #[test]
    fn a_control_session_secured_with_tls_relates_any_high_port() {
        let (f, c, s) = control_session();
        let sent = |from_client: bool, bytes: &[u8]| {
            f.on_control(c, s, from_client, bytes, bytes.len() as u32, Timestamp(3));
        };
        sent(true, "RETR caf\u{e9}.txt\r\n".as_bytes());
        sent(true, b"AUTH TLS\r\n");
        sent(false, b"234 Proceed with negotiation.\r\n");
        assert!(!f.negotiated(c, s, 50123), "still plain text");
        sent(
            true,
            &[
                0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
            ],
        );
        assert!(f.negotiated(c, s, 50123) && f.negotiated(s, c, 40001));
        assert!(!f.negotiated(c, s, 22), "a low port is not a data port");
    }

    #[test]
    fn negotiated_ports_in_their_forms() {
        for (line, from_client, port) in [
            (&b"PORT 10,0,0,1,4,1"[..], true, Some(1025)),
            (b"port 10,0,0,1,4,1\r", true, Some(1025)),
            (
                b"227 Entering Passive Mode (10,0,0,1,4,2)",
                false,
                Some(1026),
            ),
            (b"227 =10,0,0,1,4,3", false, Some(1027)),
            (
                b"229 Entering Extended Passive Mode (|||6446|)",
                false,
                Some(6446),
            ),
            (b"EPRT |1|132.235.1.2|6275|", true, Some(6275)),
            (b"EPRT !2!::1!6275!", true, Some(6275)),
            (b"PORT 10,0,0,1,4,1", false, None),
            (b"227 (10,0,0,1,4,2)", true, None),
            (b"PORT 10,0,0,1,400,1", true, None),
            (b"PORT 10,0,0,1", true, None),
            (b"229 (|||x|)", false, None),
            (b"PORT", true, None),
            (b"\xff\xfe", true, None),
        ] {
            assert_eq!(
                negotiated_port(line, from_client),
                port,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
