//! Deterministic traffic generator for benchmarks (`backflow gen-pcap`).
//!
//! Writes classic pcap (Ethernet, microseconds) from a seed, so anyone with
//! the repository can rebuild the exact files behind the published figures:
//! - `mixed`: TCP connections with handshake, data of realistic sizes
//!   (about 800 bytes per packet on average) and FIN teardown, many open at
//!   once, plus DNS over UDP;
//! - `synflood`: 60-byte SYN frames from random spoofed sources to one server
//!   port;
//! - `scan`: SYN scans and sweeps from a few scanners over background traffic;
//! - `churn`: short TCP connections (handshake, one request, reset), one
//!   after another over four days of packet time, from a pool of
//!   `concurrent` clients: what a long capture of a busy network does to
//!   memory.
//! - `handshakes`: `concurrent` TCP connections, each opened with a full
//!   handshake (60-byte frames) and never closed, so that many flows are
//!   open at once when the capture ends (memory per tracked flow).
//!
//! Addresses: clients in 10.0.0.0/8, servers in 198.51.100.0/24 and
//! 203.0.113.0/24; flood sources are random.

use std::io::{self, Write};

/// xorshift64*: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Mixed,
    SynFlood,
    Scan,
    Churn,
    Handshakes,
}

/// Packet time a `churn` capture spans.
pub const CHURN_SPAN_US: u64 = 4 * 86_400 * 1_000_000;

pub struct GenOptions {
    pub kind: Kind,
    /// Packets to write (`handshakes`: at most this many; it stops when
    /// every connection is open, after 3 × `concurrent` packets).
    pub packets: u64,
    /// Connections open at once (mixed, scan background, handshakes).
    pub concurrent: usize,
    pub seed: u64,
}

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;
const FIN: u8 = 0x01;
const RST: u8 = 0x04;

struct Writer<W: Write> {
    out: W,
    ts_us: u64,
    written: u64,
    frame: Vec<u8>,
    payload: Vec<u8>,
}

fn csum_fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

impl<W: Write> Writer<W> {
    fn header(&mut self) -> io::Result<()> {
        let mut h = Vec::with_capacity(24);
        h.extend(0xa1b2_c3d4u32.to_le_bytes());
        h.extend(2u16.to_le_bytes());
        h.extend(4u16.to_le_bytes());
        h.extend(0i32.to_le_bytes());
        h.extend(0u32.to_le_bytes());
        h.extend(65535u32.to_le_bytes());
        h.extend(1u32.to_le_bytes());
        self.out.write_all(&h)
    }

    /// Writes one Ethernet/IPv4 frame with a TCP or UDP header.
    #[allow(clippy::too_many_arguments)]
    fn packet(
        &mut self,
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        len: usize,
    ) -> io::Result<()> {
        let f = &mut self.frame;
        f.clear();
        f.extend([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let l4 = if proto == 6 { 20 } else { 8 };
        let total = 20 + l4 + len;
        let ip_start = f.len();
        f.extend([0x45, 0]);
        f.extend((total as u16).to_be_bytes());
        f.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
        f.extend(src);
        f.extend(dst);
        let mut s: u32 = 0;
        for c in f[ip_start..ip_start + 20].chunks(2) {
            s += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        let c = csum_fold(s).to_be_bytes();
        f[ip_start + 10] = c[0];
        f[ip_start + 11] = c[1];
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        if proto == 6 {
            f.extend(seq.to_be_bytes());
            f.extend(ack.to_be_bytes());
            f.extend([0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
        } else {
            f.extend(((8 + len) as u16).to_be_bytes());
            f.extend([0, 0]);
        }
        if self.payload.len() < len {
            self.payload = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        }
        f.extend_from_slice(&self.payload[..len]);
        while f.len() < 60 {
            f.push(0);
        }
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        rec[8..12].copy_from_slice(&(f.len() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(f)?;
        self.written += 1;
        Ok(())
    }
}

struct Conn {
    client: [u8; 4],
    server: [u8; 4],
    sport: u16,
    dport: u16,
    cseq: u32,
    sseq: u32,
    step: u32,
    data_left: u32,
}

fn client_addr(rng: &mut Rng) -> [u8; 4] {
    [
        10,
        rng.below(256) as u8,
        rng.below(256) as u8,
        1 + rng.below(254) as u8,
    ]
}

fn server_addr(rng: &mut Rng) -> [u8; 4] {
    if rng.below(2) == 0 {
        [198, 51, 100, 1 + rng.below(254) as u8]
    } else {
        [203, 0, 113, 1 + rng.below(254) as u8]
    }
}

fn new_conn(rng: &mut Rng) -> Conn {
    Conn {
        client: client_addr(rng),
        server: server_addr(rng),
        sport: 1024 + rng.below(64_000) as u16,
        dport: [80, 443, 443, 8080, 22, 25][rng.below(6) as usize],
        cseq: rng.next_u64() as u32,
        sseq: rng.next_u64() as u32,
        step: 0,
        // Data segments: a few requests and a response of 1-40 full segments.
        data_left: 8 + rng.below(60) as u32,
    }
}

/// Connection `i` of the `handshakes` kind: a client address and source
/// port no other connection has (16 connections per client address), to a
/// web server.
fn open_conn(i: u64, rng: &mut Rng) -> Conn {
    let host = i / 16;
    let net = host / 254;
    let slot = (i % 16) as u16;
    Conn {
        client: [10, (net >> 8) as u8, net as u8, 1 + (host % 254) as u8],
        server: server_addr(rng),
        sport: 1024 + slot * 4000 + rng.below(4000) as u16,
        dport: [443, 443, 80][rng.below(3) as usize],
        cseq: rng.next_u64() as u32,
        sseq: rng.next_u64() as u32,
        step: 0,
        data_left: 0,
    }
}

/// Advances one connection by one packet; returns false when it is done.
/// Steps: SYN, SYN-ACK, ACK, request, data (several), FIN, FIN, ACK.
fn conn_step<W: Write>(w: &mut Writer<W>, c: &mut Conn, rng: &mut Rng) -> io::Result<bool> {
    let (cl, sv) = (c.client, c.server);
    match c.step {
        0 => w.packet(cl, sv, 6, c.sport, c.dport, c.cseq, 0, SYN, 0)?,
        1 => w.packet(
            sv,
            cl,
            6,
            c.dport,
            c.sport,
            c.sseq,
            c.cseq.wrapping_add(1),
            SYN | ACK,
            0,
        )?,
        2 => {
            c.cseq = c.cseq.wrapping_add(1);
            c.sseq = c.sseq.wrapping_add(1);
            w.packet(cl, sv, 6, c.sport, c.dport, c.cseq, c.sseq, ACK, 0)?;
        }
        3 => {
            let len = 200 + rng.below(400) as usize;
            w.packet(cl, sv, 6, c.sport, c.dport, c.cseq, c.sseq, PSH | ACK, len)?;
            c.cseq = c.cseq.wrapping_add(len as u32);
        }
        4 => {
            // Server data mostly in full segments, with the client's ACKs.
            c.data_left = c.data_left.saturating_sub(1);
            if c.data_left.is_multiple_of(5) {
                w.packet(cl, sv, 6, c.sport, c.dport, c.cseq, c.sseq, ACK, 0)?;
            } else {
                let len = if rng.below(8) == 0 {
                    100 + rng.below(1300) as usize
                } else {
                    1448
                };
                w.packet(sv, cl, 6, c.dport, c.sport, c.sseq, c.cseq, PSH | ACK, len)?;
                c.sseq = c.sseq.wrapping_add(len as u32);
            }
            if c.data_left > 0 {
                return Ok(true);
            }
        }
        5 => w.packet(cl, sv, 6, c.sport, c.dport, c.cseq, c.sseq, FIN | ACK, 0)?,
        6 => w.packet(
            sv,
            cl,
            6,
            c.dport,
            c.sport,
            c.sseq,
            c.cseq.wrapping_add(1),
            FIN | ACK,
            0,
        )?,
        _ => {
            w.packet(
                cl,
                sv,
                6,
                c.sport,
                c.dport,
                c.cseq.wrapping_add(1),
                c.sseq.wrapping_add(1),
                ACK,
                0,
            )?;
            return Ok(false);
        }
    }
    c.step += 1;
    Ok(true)
}

/// Writes the capture; returns the number of packets written.
pub fn generate<W: Write>(out: W, opts: &GenOptions) -> io::Result<u64> {
    let mut w = Writer {
        out,
        ts_us: 1_700_000_000_000_000,
        written: 0,
        frame: Vec::with_capacity(1600),
        payload: Vec::new(),
    };
    w.header()?;
    let mut rng = Rng::new(opts.seed);
    match opts.kind {
        Kind::SynFlood => {
            let victim = [198, 51, 100, 10];
            while w.written < opts.packets {
                let src = [
                    1 + rng.below(223) as u8,
                    rng.below(256) as u8,
                    rng.below(256) as u8,
                    1 + rng.below(254) as u8,
                ];
                w.packet(
                    src,
                    victim,
                    6,
                    1024 + rng.below(64_000) as u16,
                    80,
                    rng.next_u64() as u32,
                    0,
                    SYN,
                    0,
                )?;
                w.ts_us += 1;
            }
        }
        Kind::Churn => {
            let flows = (opts.packets / 4).max(1);
            let gap = CHURN_SPAN_US / flows;
            let pool = opts.concurrent.max(1) as u64;
            let start = w.ts_us;
            for i in 0..flows {
                w.ts_us = start + i * gap;
                let c = rng.below(pool);
                let cl = [10, 50 + (c >> 16) as u8, (c >> 8) as u8, c as u8];
                let sv = server_addr(&mut rng);
                let sport = 1024 + rng.below(64_000) as u16;
                let dport = [80, 443, 443, 53][rng.below(4) as usize];
                let (cs, ss) = (rng.next_u64() as u32, rng.next_u64() as u32);
                w.packet(cl, sv, 6, sport, dport, cs, 0, SYN, 0)?;
                w.ts_us += 100;
                w.packet(
                    sv,
                    cl,
                    6,
                    dport,
                    sport,
                    ss,
                    cs.wrapping_add(1),
                    SYN | ACK,
                    0,
                )?;
                w.ts_us += 100;
                let (cs, ss) = (cs.wrapping_add(1), ss.wrapping_add(1));
                w.packet(cl, sv, 6, sport, dport, cs, ss, PSH | ACK, 100)?;
                w.ts_us += 100;
                w.packet(
                    cl,
                    sv,
                    6,
                    sport,
                    dport,
                    cs.wrapping_add(100),
                    ss,
                    RST | ACK,
                    0,
                )?;
            }
        }
        Kind::Handshakes => {
            // SYN, SYN-ACK, ACK per connection; nothing is ever closed.
            for i in 0..opts.concurrent as u64 {
                let mut c = open_conn(i, &mut rng);
                for _ in 0..3 {
                    if w.written >= opts.packets {
                        break;
                    }
                    conn_step(&mut w, &mut c, &mut rng)?;
                    w.ts_us += 1 + rng.below(20);
                }
            }
        }
        Kind::Mixed | Kind::Scan => {
            let mut conns: Vec<Conn> = (0..opts.concurrent.max(1))
                .map(|_| new_conn(&mut rng))
                .collect();
            let scanners: [[u8; 4]; 3] = [[203, 0, 113, 66], [10, 9, 9, 9], [198, 51, 100, 77]];
            let mut scan_port: u32 = 0;
            while w.written < opts.packets {
                if opts.kind == Kind::Scan && rng.below(3) == 0 {
                    // One probe and its answer: a vertical scan of one host per
                    // scanner, and a sweep of port 445.
                    let s = scanners[rng.below(3) as usize];
                    scan_port = scan_port.wrapping_add(1);
                    let (target, port) = if scan_port.is_multiple_of(4) {
                        ([10, 1, (scan_port >> 8) as u8, scan_port as u8], 445)
                    } else {
                        ([10, 0, 0, 5], (1 + scan_port % 65_535) as u16)
                    };
                    w.packet(s, target, 6, 40_000, port, scan_port, 0, SYN, 0)?;
                    w.packet(
                        target,
                        s,
                        6,
                        port,
                        40_000,
                        0,
                        scan_port.wrapping_add(1),
                        RST | ACK,
                        0,
                    )?;
                } else if rng.below(50) == 0 {
                    // DNS query and answer.
                    let c = client_addr(&mut rng);
                    let sport = 1024 + rng.below(64_000) as u16;
                    let r = [198, 51, 100, 53];
                    w.packet(c, r, 17, sport, 53, 0, 0, 0, 40)?;
                    w.packet(r, c, 17, 53, sport, 0, 0, 0, 120)?;
                } else {
                    let i = rng.below(conns.len() as u64) as usize;
                    if !conn_step(&mut w, &mut conns[i], &mut rng)? {
                        conns[i] = new_conn(&mut rng);
                    }
                }
                w.ts_us += 1 + rng.below(20);
            }
        }
    }
    w.out.flush()?;
    Ok(w.written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        let opts = GenOptions {
            kind: Kind::Mixed,
            packets: 2000,
            concurrent: 50,
            seed: 9,
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        assert_eq!(generate(&mut a, &opts).unwrap_or(0), 2000);
        generate(&mut b, &opts).unwrap_or(0);
        assert_eq!(a, b);
        let mut c = Vec::new();
        generate(&mut c, &GenOptions { seed: 10, ..opts }).unwrap_or(0);
        assert_ne!(a, c);
    }

    #[test]
    fn mixed_traffic_averages_realistic_sizes() {
        let mut buf = Vec::new();
        let n = generate(
            &mut buf,
            &GenOptions {
                kind: Kind::Mixed,
                packets: 20_000,
                concurrent: 500,
                seed: 1,
            },
        )
        .unwrap_or(0);
        let avg = (buf.len() as u64 - 24 - 16 * n) / n;
        assert!((600..=1000).contains(&avg), "average frame {avg}");
    }

    #[test]
    fn flood_frames_are_60_bytes() {
        let mut buf = Vec::new();
        let n = generate(
            &mut buf,
            &GenOptions {
                kind: Kind::SynFlood,
                packets: 100,
                concurrent: 1,
                seed: 1,
            },
        )
        .unwrap_or(0);
        assert_eq!(buf.len() as u64, 24 + n * (16 + 60));
    }

    /// FNV-1a: enough to notice any changed byte.
    fn fnv(data: &[u8]) -> u64 {
        data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        })
    }

    /// The published benchmark figures come from captures anyone can
    /// regenerate: a kind's output for a seed must not change when the
    /// generator grows (the hashes are of the captures as first written).
    #[test]
    fn existing_kinds_keep_their_bytes() {
        for (kind, len, hash) in [
            (Kind::Mixed, 4_517_146, 0xfc8e_5fcf_5901_ebac),
            (Kind::SynFlood, 380_024, 0x8fd0_952c_7570_8cd1),
            (Kind::Scan, 2_165_229, 0x8396_7dd7_27a7_e957),
        ] {
            let mut buf = Vec::new();
            let opts = GenOptions {
                kind,
                packets: 5000,
                concurrent: 200,
                seed: 3,
            };
            assert_eq!(generate(&mut buf, &opts).unwrap_or(0), 5000);
            assert_eq!((buf.len(), fnv(&buf)), (len, hash), "{kind:?}");
        }
    }

    /// Source, source port, destination, destination port, TCP flags.
    type Segment = ([u8; 4], u16, [u8; 4], u16, u8);

    /// Reads back the segments of a generated capture.
    fn tcp_frames(buf: &[u8]) -> Vec<Segment> {
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= buf.len() {
            let caplen =
                u32::from_le_bytes([buf[at + 8], buf[at + 9], buf[at + 10], buf[at + 11]]) as usize;
            let f = &buf[at + 16..at + 16 + caplen];
            let ip = &f[14..];
            let tcp = &ip[20..];
            out.push((
                [ip[12], ip[13], ip[14], ip[15]],
                u16::from_be_bytes([tcp[0], tcp[1]]),
                [ip[16], ip[17], ip[18], ip[19]],
                u16::from_be_bytes([tcp[2], tcp[3]]),
                tcp[13],
            ));
            at += 16 + caplen;
        }
        out
    }

    #[test]
    fn handshakes_open_distinct_connections_and_close_none() {
        let conns = 5000;
        let mut buf = Vec::new();
        let n = generate(
            &mut buf,
            &GenOptions {
                kind: Kind::Handshakes,
                packets: u64::MAX,
                concurrent: conns,
                seed: 1,
            },
        )
        .unwrap_or(0);
        assert_eq!(n, 3 * conns as u64, "SYN, SYN-ACK, ACK each");
        assert_eq!(buf.len() as u64, 24 + n * (16 + 60), "60-byte frames");
        let frames = tcp_frames(&buf);
        let mut keys = std::collections::HashSet::new();
        for hs in frames.chunks(3) {
            let (c, sp, s, dp, syn) = hs[0];
            assert_eq!(syn, SYN);
            assert_eq!(hs[1], (s, dp, c, sp, SYN | ACK));
            assert_eq!(hs[2], (c, sp, s, dp, ACK));
            assert!(keys.insert((c, sp, s, dp)), "connection {c:?}:{sp} twice");
        }
        assert_eq!(keys.len(), conns);
        assert!(frames.iter().all(|f| f.4 & (FIN | RST) == 0));
        // --packets still bounds the output.
        let mut short = Vec::new();
        let opts = GenOptions {
            kind: Kind::Handshakes,
            packets: 10,
            concurrent: conns,
            seed: 1,
        };
        assert_eq!(generate(&mut short, &opts).unwrap_or(0), 10);
    }
}
