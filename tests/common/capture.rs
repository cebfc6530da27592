//! Captures written by the tests: TCP connections between IPv4 hosts, in
//! Ethernet frames 1 ms apart.

use etherparse::{PacketBuilder, PacketBuilderStep, TcpHeader};

use super::pcap_header;

/// A capture being written: Ethernet frames, 1 ms apart.
pub struct Capture {
    pub bytes: Vec<u8>,
    micros: u64,
}

/// One TCP connection's sequence numbers.
pub struct Conn {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
}

impl Capture {
    pub fn new() -> Self {
        Capture {
            bytes: pcap_header(),
            micros: 1_700_000_000_000_000,
        }
    }

    pub fn frame(&mut self, tcp: PacketBuilderStep<TcpHeader>, payload: &[u8]) {
        let mut frame = Vec::new();
        tcp.write(&mut frame, payload).expect("frame");
        self.micros += 1000;
        let (secs, us) = (self.micros / 1_000_000, self.micros % 1_000_000);
        for x in [
            secs as u32,
            us as u32,
            frame.len() as u32,
            frame.len() as u32,
        ] {
            self.bytes.extend(x.to_le_bytes());
        }
        self.bytes.extend(frame);
    }

    /// One segment of `conn`, from its client when `from_client`.
    pub fn segment(&mut self, conn: &mut Conn, from_client: bool, syn: bool, payload: &[u8]) {
        let (from, to, side) = if from_client {
            (conn.client, conn.server, 0)
        } else {
            (conn.server, conn.client, 1)
        };
        let ack = conn.seq[1 - side];
        let b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(from.0, to.0, 64)
            .tcp(from.1, to.1, conn.seq[side], 65535);
        let b = match (syn, from_client) {
            (true, true) => b.syn(),
            (true, false) => b.syn().ack(ack),
            _ => b.ack(ack).psh(),
        };
        self.frame(b, payload);
        conn.seq[side] = conn.seq[side]
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(syn));
    }

    /// A connection opened with a full handshake.
    pub fn open(&mut self, client: ([u8; 4], u16), server: ([u8; 4], u16)) -> Conn {
        let mut c = Conn {
            client,
            server,
            seq: [1000, 5000],
        };
        self.segment(&mut c, true, true, b"");
        self.segment(&mut c, false, true, b"");
        self.segment(&mut c, true, false, b"");
        c
    }

    /// A connection refused: the client's SYN, the server's RST-ACK.
    pub fn refused(&mut self, client: ([u8; 4], u16), server: ([u8; 4], u16)) {
        let syn = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(client.0, server.0, 64)
            .tcp(client.1, server.1, 1000, 65535)
            .syn();
        self.frame(syn, b"");
        let rst = PacketBuilder::ethernet2([4; 6], [2; 6])
            .ipv4(server.0, client.0, 64)
            .tcp(server.1, client.1, 0, 0)
            .rst()
            .ack(1001);
        self.frame(rst, b"");
    }
}
