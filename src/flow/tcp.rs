//! TCP connection tracking as a passive observer.
//!
//! Each side keeps its RFC 793 state (section 3.2, as inferred from the
//! segments it sends and receives on the wire) and Zeek's endpoint state
//! (INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET),
//! from which [`TcpTracker::conn_state`] derives Zeek's `conn_state` exactly as
//! Zeek's `conn.log` does, and [`History`] records Zeek's `history` letters.
//! Sequence numbers compare modulo 2^32 (RFC 793 section 3.3).

use crate::decode::tcp_flags::{ACK, FIN, RST, SYN};

/// `a < b` in sequence space.
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// `a <= b` in sequence space.
pub fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

/// RFC 793 connection states, per side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rfc793 {
    #[default]
    Closed,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// Zeek's TCP endpoint states (`TCP_ENDPOINT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ZeekState {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

const H_SYN: u16 = 0x1;
const H_FIN: u16 = 0x2;
const H_RST: u16 = 0x4;
const H_FIN_RST: u16 = 0x8;
const H_DATA: u16 = 0x10;
const H_ACK: u16 = 0x20;
const H_MULTI: u16 = 0x40;

/// One side of a connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Endpoint {
    pub rfc: Rfc793,
    pub zeek: ZeekState,
    zeek_prev: ZeekState,
    /// History letters already recorded for this side (Zeek's `hist_seen`).
    hist_seen: u16,
    seq_init: bool,
    pub sent_payload: bool,
    /// Whether `fin_end` is set (kept apart from it so that the flag packs
    /// with the other small fields: this struct is in every TCP flow).
    fin_sent: bool,
    /// Initial sequence number (of the SYN, or of the first segment seen).
    pub isn: u32,
    /// Highest sequence number sent plus one (SYN and FIN count one).
    max_seq: u32,
    /// Sequence number just past this side's FIN, once sent.
    fin_end: u32,
    last_syn: u32,
    last_fin: u32,
    last_rst: u32,
    /// Counted up to 65535: enough for Zeek's history scaling to add its
    /// letter at 1, 10, 100, 1000 and 10000.
    retransmits: u16,
    zero_windows: u16,
}

impl Endpoint {
    /// Sequence number just past this side's FIN, once sent.
    fn fin_end(&self) -> Option<u32> {
        self.fin_sent.then_some(self.fin_end)
    }

    fn set_fin_end(&mut self, v: u32) {
        self.fin_sent = true;
        self.fin_end = v;
    }
}

/// Zeek's `history` string: upper case for the originator, lower case for
/// the responder; bounded (Zeek's repeat scaling keeps it short anyway).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct History {
    len: u8,
    buf: [u8; History::CAP],
}

impl History {
    pub const CAP: usize = 24;

    pub fn push(&mut self, letter: u8, from_client: bool) {
        let c = if from_client {
            letter.to_ascii_uppercase()
        } else {
            letter.to_ascii_lowercase()
        };
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = c;
            self.len += 1;
        }
    }
    pub fn push_raw(&mut self, c: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = c;
            self.len += 1;
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..usize::from(self.len)).unwrap_or(&[])).unwrap_or("")
    }
}

/// Zeek records C, G, T and W at the 1st, 10th, 100th... occurrence.
fn scaled(counter: &mut u16) -> bool {
    *counter = counter.saturating_add(1);
    let mut t = 1u16;
    while t < *counter {
        match t.checked_mul(10) {
            Some(n) => t = n,
            None => return false,
        }
    }
    t == *counter
}

/// What a segment did to the connection, for the flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOutcome {
    /// The three-way handshake completed with this segment.
    pub handshake_completed: bool,
}

/// TCP state of one flow, both sides.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpTracker {
    /// `[client, server]`.
    pub ep: [Endpoint; 2],
    pub history: History,
    /// The client's SYN, the server's SYN-ACK and the client's ACK were all seen.
    pub handshake_seen: bool,
    pub reset: bool,
}

impl TcpTracker {
    /// Updates both sides with one segment sent by the client (`from_client`)
    /// or the server.
    pub fn segment(
        &mut self,
        from_client: bool,
        flags: u8,
        seq: u32,
        ack: u32,
        len: u32,
        window: u16,
    ) -> SegmentOutcome {
        let (s, r) = if from_client { (0, 1) } else { (1, 0) };
        let was_established = self.handshake_seen;
        let [a, b] = &mut self.ep;
        let (sender, peer) = if s == 0 { (a, b) } else { (b, a) };
        let _ = r;
        let syn = flags & SYN != 0;
        let fin = flags & FIN != 0;
        let rst = flags & RST != 0;
        let has_ack = flags & ACK != 0;

        if !sender.seq_init
            || (syn && sender.zeek_prev == ZeekState::Inactive && sender.zeek == ZeekState::Reset)
        {
            sender.seq_init = true;
            sender.isn = seq;
            sender.max_seq = seq;
        }
        let rel = |x: u32| x.wrapping_sub(sender.isn);

        // History (Zeek's update_history).
        let ctrl = u8::from(syn) + u8::from(fin) + u8::from(rst);
        if ctrl > 1 {
            if fin && rst {
                check(&mut self.history, sender, H_FIN_RST, b'I', from_client);
            } else {
                check(&mut self.history, sender, H_MULTI, b'Q', from_client);
            }
        } else if syn {
            let letter = if has_ack { b'H' } else { b'S' };
            if sender.hist_seen & H_SYN == 0 || rel(seq) != sender.last_syn {
                sender.hist_seen |= H_SYN;
                self.history.push(letter, from_client);
            }
            sender.last_syn = rel(seq);
        } else if fin {
            let key = rel(seq).wrapping_add(len);
            if sender.hist_seen & H_FIN == 0 || key != sender.last_fin {
                sender.hist_seen |= H_FIN;
                self.history.push(b'F', from_client);
            }
            sender.last_fin = key;
        } else if rst {
            if sender.hist_seen & H_RST == 0 || rel(seq) != sender.last_rst {
                sender.hist_seen |= H_RST;
                self.history.push(b'R', from_client);
            }
            sender.last_rst = rel(seq);
        } else if len > 0 {
            check(&mut self.history, sender, H_DATA, b'D', from_client);
        } else if has_ack {
            check(&mut self.history, sender, H_ACK, b'A', from_client);
        }
        if window == 0
            && !rst
            && peer.zeek != ZeekState::Closed
            && sender.zeek != ZeekState::Reset
            && scaled(&mut sender.zero_windows)
        {
            self.history.push(b'W', from_client);
        }

        // Retransmission: payload that ends at or before what was already sent.
        let end = seq
            .wrapping_add(len)
            .wrapping_add(u32::from(syn))
            .wrapping_add(u32::from(fin));
        if len > 0
            && sender.zeek != ZeekState::Reset
            && seq_le(end, sender.max_seq)
            && sender.sent_payload
            && scaled(&mut sender.retransmits)
        {
            self.history.push(b'T', from_client);
        }
        if seq_lt(sender.max_seq, end) {
            sender.max_seq = end;
        }
        if len > 0 {
            sender.sent_payload = true;
        }

        zeek_update(sender, peer, from_client, flags, len);
        rfc793_update(sender, peer, flags, seq, ack, len);
        if rst {
            self.reset = true;
        }
        // The handshake completes when the client acknowledges the server's
        // SYN, or, that ACK lost from the capture, anything the server sent
        // after it (a banner).
        let isn1 = self.ep[1].isn.wrapping_add(1);
        if !self.handshake_seen
            && from_client
            && has_ack
            && !syn
            && self.ep[1].hist_seen & H_SYN != 0
            && self.ep[0].hist_seen & H_SYN != 0
            && seq_le(isn1, ack)
            && seq_le(ack, self.ep[1].max_seq)
        {
            self.handshake_seen = true;
        }
        SegmentOutcome {
            handshake_completed: self.handshake_seen && !was_established,
        }
    }

    /// Both sides closed (FIN exchange done) or reset.
    pub fn is_closed(&self) -> bool {
        let [c, s] = &self.ep;
        self.reset
            || (matches!(c.rfc, Rfc793::TimeWait | Rfc793::Closed | Rfc793::LastAck)
                && matches!(s.rfc, Rfc793::TimeWait | Rfc793::Closed | Rfc793::LastAck)
                && c.fin_end().is_some()
                && s.fin_end().is_some())
    }

    /// The handshake completed or, on a connection picked up without the
    /// client's SYN, both sides are past their handshake (Suricata's
    /// ESTABLISHED stream, midstream pickup included). A SYN answered by a
    /// SYN-ACK is not established until the client acknowledges it: Zeek
    /// already calls both sides established then, Suricata does not, and
    /// a half-open attempt keeps the short timeout of new flows.
    pub fn is_established(&self) -> bool {
        let [c, s] = &self.ep;
        self.handshake_seen
            || (c.hist_seen & H_SYN == 0
                && matches!(c.zeek, ZeekState::Partial | ZeekState::Established)
                && matches!(s.zeek, ZeekState::Partial | ZeekState::Established))
    }

    /// Suricata's stream state name for EVE `tcp.state`.
    pub fn suricata_state(&self) -> &'static str {
        use Rfc793::*;
        let [c, s] = [self.ep[0].rfc, self.ep[1].rfc];
        let any = |st: Rfc793| c == st || s == st;
        if self.reset {
            "closed"
        } else if c == Established && s == Established {
            "established"
        } else if any(TimeWait) && (c == Closed || s == Closed || c == TimeWait && s == TimeWait) {
            "closed"
        } else if any(TimeWait) {
            "time_wait"
        } else if any(LastAck) {
            "last_ack"
        } else if any(Closing) {
            "closing"
        } else if any(FinWait2) {
            "fin_wait2"
        } else if any(FinWait1) {
            "fin_wait1"
        } else if any(CloseWait) {
            "close_wait"
        } else if any(SynReceived) {
            "syn_recv"
        } else if any(SynSent) {
            "syn_sent"
        } else if any(Established) {
            "established"
        } else {
            "none"
        }
    }

    /// Zeek's `conn_state` (base/protocols/conn/main.zeek, `conn_state`).
    pub fn conn_state(&self) -> &'static str {
        use ZeekState::*;
        let (os, rs) = (self.ep[0].zeek, self.ep[1].zeek);
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent)
                || (os == Reset && !self.ep[0].sent_payload && !self.ep[1].sent_payload)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if r_inactive {
                if rstos0_history(self.history.as_str()) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if r_inactive { "SH" } else { "S2" }
        } else if rs == Closed {
            if o_inactive { "SHR" } else { "S3" }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

fn check(history: &mut History, ep: &mut Endpoint, mask: u16, letter: u8, from_client: bool) {
    if ep.hist_seen & mask == 0 {
        ep.hist_seen |= mask;
        history.push(letter, from_client);
    }
}

/// Zeek's `/\^?S[^HAFGIQ]*R.*/` on the whole history.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        match c {
            'R' => return true,
            'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
            _ => {}
        }
    }
    false
}

/// Zeek's TCP endpoint state machine (TCPSessionAdapter::UpdateStateMachine).
fn zeek_update(sender: &mut Endpoint, peer: &mut Endpoint, is_orig: bool, flags: u8, len: u32) {
    use ZeekState::*;
    let (syn, fin, rst, ack) = (
        flags & SYN != 0,
        flags & FIN != 0,
        flags & RST != 0,
        flags & ACK != 0,
    );
    let set = |ep: &mut Endpoint, st: ZeekState| {
        ep.zeek_prev = ep.zeek;
        ep.zeek = st;
    };
    match sender.zeek {
        Inactive => {
            if syn {
                if is_orig {
                    set(sender, if ack { SynAckSent } else { SynSent });
                } else {
                    if peer.zeek == SynSent {
                        set(peer, Established);
                    }
                    set(sender, Established);
                }
            }
            if fin {
                set(sender, Closed);
            }
            if rst {
                set(sender, Reset);
            }
            if sender.zeek == Inactive {
                if !is_orig && len == 0 && peer.zeek == SynSent {
                    // An ACK before the SYN-ACK: stays inactive.
                } else if ack && peer.zeek == Established {
                    set(sender, Established);
                } else {
                    set(sender, Partial);
                }
            }
        }
        SynSent | SynAckSent => {
            if fin {
                set(sender, Closed);
            }
            if rst {
                set(sender, Reset);
            }
        }
        Established | Partial => {
            if syn && !ack && sender.zeek == Partial && peer.zeek == Inactive {
                set(sender, SynSent);
            }
            if fin && !rst {
                set(sender, Closed);
                if peer.zeek == Reset && peer.zeek_prev == Closed {
                    set(peer, Closed);
                }
            }
            if rst {
                set(sender, Reset);
            }
        }
        Closed => {
            if rst && peer.zeek != Closed {
                set(sender, Reset);
            }
        }
        Reset => {}
    }
}

/// RFC 793 state transitions (section 3.9), inferred by a passive observer
/// that sees each segment once, as it is sent and as it is received.
fn rfc793_update(
    sender: &mut Endpoint,
    peer: &mut Endpoint,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
) {
    use Rfc793::*;
    let (syn, fin, rst, has_ack) = (
        flags & SYN != 0,
        flags & FIN != 0,
        flags & RST != 0,
        flags & ACK != 0,
    );
    if rst {
        sender.rfc = Closed;
        peer.rfc = Closed;
        return;
    }
    if syn && !has_ack {
        // Active open, or the other half of a simultaneous open.
        sender.rfc = if peer.rfc == SynSent {
            SynReceived
        } else {
            SynSent
        };
    } else if syn && has_ack {
        sender.rfc = SynReceived;
        if peer.rfc == SynSent || peer.rfc == SynReceived {
            peer.rfc = Established;
        }
    }
    // The sender's ACK acknowledges the peer's SYN or FIN.
    if has_ack {
        if peer.rfc == SynReceived && seq_le(peer.isn.wrapping_add(1), ack) {
            peer.rfc = Established;
            if sender.rfc == SynSent || sender.rfc == Closed {
                sender.rfc = Established;
            }
        }
        if let Some(fin_end) = peer.fin_end()
            && seq_le(fin_end, ack)
        {
            peer.rfc = match peer.rfc {
                FinWait1 => FinWait2,
                Closing => TimeWait,
                LastAck => Closed,
                other => other,
            };
        }
    }
    // A segment with data or ACK on a connection seen mid-stream.
    if !syn
        && sender.rfc == Closed
        && peer.rfc == Closed
        && (has_ack || len > 0)
        && sender.fin_end().is_none()
    {
        sender.rfc = Established;
        peer.rfc = Established;
    }
    if fin {
        sender.set_fin_end(
            seq.wrapping_add(len)
                .wrapping_add(u32::from(syn))
                .wrapping_add(1),
        );
        sender.rfc = match sender.rfc {
            CloseWait => LastAck,
            Closed | SynSent | SynReceived | Established => FinWait1,
            other => other,
        };
        peer.rfc = match peer.rfc {
            Established | SynReceived | SynSent => CloseWait,
            FinWait1 => Closing,
            FinWait2 => TimeWait,
            other => other,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tcp_flags::PSH;

    const C: bool = true;
    const S: bool = false;

    /// Plays (from_client, flags, seq, ack, len) and returns (conn_state, history).
    fn play(segs: &[(bool, u8, u32, u32, u32)]) -> (TcpTracker, &'static str, String) {
        let mut t = TcpTracker::default();
        for &(dir, flags, seq, ack, len) in segs {
            t.segment(dir, flags, seq, ack, len, 1000);
        }
        let cs = t.conn_state();
        let h = t.history.as_str().to_string();
        (t, cs, h)
    }

    #[test]
    fn full_connection_is_sf() {
        let (t, cs, h) = play(&[
            (C, SYN, 100, 0, 0),
            (S, SYN | ACK, 500, 101, 0),
            (C, ACK, 101, 501, 0),
            (C, PSH | ACK, 101, 501, 10),
            (S, PSH | ACK, 501, 111, 20),
            (C, FIN | ACK, 111, 521, 0),
            (S, FIN | ACK, 521, 112, 0),
            (C, ACK, 112, 522, 0),
        ]);
        // The server never sends a pure ACK, so no `a` (Zeek records `a` only for those).
        assert_eq!((cs, h.as_str()), ("SF", "ShADdFf"));
        assert!(t.handshake_seen && t.is_closed());
        assert_eq!(t.suricata_state(), "closed");
        assert_eq!(
            (t.ep[0].rfc, t.ep[1].rfc),
            (Rfc793::TimeWait, Rfc793::Closed)
        );
    }

    #[test]
    fn zeek_states_for_the_classic_cases() {
        assert_eq!(play(&[(C, SYN, 1, 0, 0)]).1, "S0");
        assert_eq!(play(&[(C, SYN, 1, 0, 0), (S, RST | ACK, 0, 2, 0)]).1, "REJ");
        assert_eq!(play(&[(C, SYN, 1, 0, 0), (S, SYN | ACK, 9, 2, 0)]).1, "S1");
        assert_eq!(
            play(&[
                (C, SYN, 1, 0, 0),
                (S, SYN | ACK, 9, 2, 0),
                (C, RST, 2, 0, 0)
            ])
            .1,
            "RSTO"
        );
        assert_eq!(
            play(&[
                (C, SYN, 1, 0, 0),
                (S, SYN | ACK, 9, 2, 0),
                (S, RST, 10, 0, 0)
            ])
            .1,
            "RSTR"
        );
        assert_eq!(play(&[(C, SYN, 1, 0, 0), (C, RST, 2, 0, 0)]).1, "RSTOS0");
        assert_eq!(play(&[(C, SYN, 1, 0, 0), (C, FIN, 2, 0, 0)]).1, "SH");
        assert_eq!(play(&[(C, ACK, 1, 9, 5), (S, ACK, 9, 6, 5)]).1, "OTH");
        assert_eq!(
            play(&[(S, SYN | ACK, 9, 2, 0), (S, RST, 10, 0, 0)]).1,
            "RSTRH"
        );
        let (_, cs, _) = play(&[
            (C, SYN, 1, 0, 0),
            (S, SYN | ACK, 9, 2, 0),
            (C, ACK, 2, 10, 0),
            (C, FIN | ACK, 2, 10, 0),
        ]);
        assert_eq!(cs, "S2");
        let (_, cs, _) = play(&[
            (C, SYN, 1, 0, 0),
            (S, SYN | ACK, 9, 2, 0),
            (C, ACK, 2, 10, 0),
            (S, FIN | ACK, 10, 2, 0),
        ]);
        assert_eq!(cs, "S3");
    }

    #[test]
    fn established_once_the_client_acknowledges_the_syn_ack() {
        let syn = (C, SYN, 100, 0, 0);
        let syn_ack = (S, SYN | ACK, 500, 101, 0);
        // Zeek calls both sides established here; the stream is not.
        let (t, cs, _) = play(&[syn, syn_ack]);
        assert_eq!(cs, "S1");
        assert!(!t.is_established());
        assert_eq!(t.suricata_state(), "syn_recv");
        assert!(
            play(&[syn, syn_ack, (C, ACK, 101, 501, 0)])
                .0
                .is_established()
        );
        // The ACK may come with the client's first data.
        assert!(
            play(&[syn, syn_ack, (C, PSH | ACK, 101, 501, 10)])
                .0
                .is_established()
        );
        // An ACK of something else completes nothing.
        assert!(
            !play(&[syn, syn_ack, (C, ACK, 101, 999, 0)])
                .0
                .is_established()
        );
        // The client's ACK lost from the capture: its ACK of the server's
        // banner completes the handshake; an ACK beyond it does not.
        let banner = (S, PSH | ACK, 501, 101, 20);
        let t = play(&[syn, syn_ack, banner, (C, ACK, 101, 521, 0)]).0;
        assert!(t.is_established());
        let t = play(&[syn, syn_ack, banner, (C, ACK, 101, 522, 0)]).0;
        assert!(!t.is_established());
        // Picked up mid-stream: established once both sides sent.
        let mid = [(C, PSH | ACK, 7, 9, 10), (S, PSH | ACK, 9, 17, 10)];
        assert!(!play(&mid[..1]).0.is_established());
        assert!(play(&mid).0.is_established());
        // The server's SYN-ACK seen, the client's SYN missed.
        assert!(
            play(&[syn_ack, (C, ACK, 101, 501, 0), (S, PSH | ACK, 501, 101, 5)])
                .0
                .is_established()
        );
    }

    #[test]
    fn retransmissions_and_zero_windows_scale() {
        let mut t = TcpTracker::default();
        t.segment(C, SYN, 0, 0, 0, 100);
        t.segment(S, SYN | ACK, 0, 1, 0, 100);
        t.segment(C, ACK, 1, 1, 0, 100);
        t.segment(C, PSH | ACK, 1, 1, 10, 100);
        for _ in 0..10 {
            t.segment(C, PSH | ACK, 1, 1, 10, 100);
        }
        // First retransmission and the tenth each add a T.
        assert_eq!(t.history.as_str(), "ShADTT");
        t.segment(S, ACK, 1, 11, 0, 0);
        assert_eq!(t.history.as_str(), "ShADTTaw");
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(seq_lt(u32::MAX - 5, 3));
        assert!(!seq_lt(3, u32::MAX - 5));
        assert!(seq_le(7, 7));
        let (_, cs, h) = play(&[
            (C, SYN, u32::MAX, 0, 0),
            (S, SYN | ACK, u32::MAX - 1, 0, 0),
            (C, ACK, 0, u32::MAX, 0),
            (C, PSH | ACK, 0, u32::MAX, 100),
            (C, PSH | ACK, 0, u32::MAX, 100),
        ]);
        assert_eq!((cs, h.as_str()), ("S1", "ShADT"));
    }

    #[test]
    fn history_is_bounded() {
        let mut t = TcpTracker::default();
        for i in 0..1000u32 {
            t.segment(i % 2 == 0, SYN, i * 7, 0, 0, 1);
        }
        assert_eq!(t.history.as_str().len(), History::CAP);
    }
}
