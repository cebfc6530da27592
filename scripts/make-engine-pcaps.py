#!/usr/bin/env python3
"""Writes the engine's format fixtures in pcaps/engine/ (deterministic, no deps).

Each capture carries the same kind of traffic (a TCP connection with data and
a FIN teardown, a DNS query/answer over UDP, an ICMP echo) wrapped in a
different capture format or link layer, so the tests can check that every
format yields the same flows. Addresses are documentation ranges.

    python3 scripts/make-engine-pcaps.py [OUTDIR]
"""
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "pcaps", "engine")
T0 = 1_700_000_000  # 2023-11-14T22:13:20Z


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def ipv4(src, dst, proto, payload, ident=1, flags_frag=0x4000, ttl=64):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_frag, ttl, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def tcp(src, dst, sport, dport, seq, ack, flags, data=b"", win=64240):
    off = 5 << 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off, flags, win, 0, 0) + data
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(seg))
    c = csum(pseudo + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp(src, dst, sport, dport, data):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    return seg


def icmp_echo(type_, ident, seq, data=b"ping"):
    msg = struct.pack("!BBHHH", type_, 0, 0, ident, seq) + data
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def eth(payload, vlans=(), ethertype=0x0800):
    frame = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
    tpids = [0x88A8, 0x8100] if len(vlans) == 2 else [0x8100]
    for tpid, vid in zip(tpids, vlans):
        frame += struct.pack("!HH", tpid, vid)
    return frame + struct.pack("!H", ethertype) + payload


C, S, R = "192.0.2.10", "198.51.100.20", "203.0.113.53"
F, SY, RS, PS, AC = 0x01, 0x02, 0x04, 0x08, 0x10


def conversation():
    """(seconds offset, IPv4 packet) for the shared traffic."""
    pkts = []
    t = 0.0

    def add(dt, p):
        nonlocal t
        t += dt
        pkts.append((t, p))

    req = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    add(0.0, ipv4(C, S, 6, tcp(C, S, 40001, 80, 1000, 0, SY)))
    add(0.01, ipv4(S, C, 6, tcp(S, C, 80, 40001, 5000, 1001, SY | AC)))
    add(0.01, ipv4(C, S, 6, tcp(C, S, 40001, 80, 1001, 5001, AC)))
    add(0.01, ipv4(C, S, 6, tcp(C, S, 40001, 80, 1001, 5001, PS | AC, req)))
    add(0.01, ipv4(S, C, 6, tcp(S, C, 80, 40001, 5001, 1001 + len(req), PS | AC, resp)))
    add(0.01, ipv4(C, S, 6, tcp(C, S, 40001, 80, 1001 + len(req), 5001 + len(resp), F | AC)))
    add(0.01, ipv4(S, C, 6, tcp(S, C, 80, 40001, 5001 + len(resp), 1002 + len(req), F | AC)))
    add(0.01, ipv4(C, S, 6, tcp(C, S, 40001, 80, 1002 + len(req), 5002 + len(resp), AC)))
    q = bytes.fromhex("1234010000010000000000000765786d706c6503636f6d0000010001")
    add(0.05, ipv4(C, R, 17, udp(C, R, 53001, 53, q)))
    add(0.01, ipv4(R, C, 17, udp(R, C, 53, 53001, q[:2] + b"\x81\x80" + q[4:])))
    add(0.05, ipv4(C, S, 1, icmp_echo(8, 7, 1)))
    add(0.01, ipv4(S, C, 1, icmp_echo(0, 7, 1)))
    # A refused connection: SYN answered by RST-ACK.
    add(0.05, ipv4(C, S, 6, tcp(C, S, 40002, 23, 7000, 0, SY)))
    add(0.01, ipv4(S, C, 6, tcp(S, C, 23, 40002, 0, 7001, RS | AC)))
    return pkts


def ts_parts(off, nano):
    whole = T0 + int(off)
    frac = round((off - int(off)) * (1e9 if nano else 1e6))
    return whole, frac


def write_pcap(name, frames, linktype, big_endian=False, nano=False, snaplen=65535):
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)
    for off, data in frames:
        sec, frac = ts_parts(off, nano)
        out += struct.pack(e + "IIII", sec, frac, len(data), len(data)) + data
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(out)
    return out


def ng_block(btype, body, e="<"):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def ng_option(code, value, e="<"):
    return struct.pack(e + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def write_pcapng(name, ifaces, frames):
    """ifaces: [(linktype, tsresol)], frames: [(iface, off, data)]."""
    out = ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for lt, resol in ifaces:
        opts = struct.pack("<HH", 9, 1) + bytes([resol]) + b"\0\0\0" + struct.pack("<HH", 0, 0)
        out += ng_block(1, struct.pack("<HHI", lt, 0, 0) + opts)
    for iface, off, data in frames:
        units = 10 ** ifaces[iface][1]
        ts = int(round((T0 + off) * units))
        body = struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data
        out += ng_block(6, body)
    with open(os.path.join(OUT, name), "wb") as fh:
        fh.write(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    conv = conversation()
    # 1. Ethernet, little-endian microseconds: the reference.
    write_pcap("basic-eth.pcap", [(t, eth(p)) for t, p in conv], 1)
    # 2. QinQ (802.1ad 100 / 802.1Q 200), big-endian, nanoseconds.
    write_pcap("qinq-be-nano.pcap", [(t, eth(p, vlans=(100, 200))) for t, p in conv], 1, big_endian=True, nano=True)
    # 3. pcapng, three interfaces: Ethernet (us), raw IP (ns), Linux SLL2 (us);
    #    the connection's packets alternate between them.
    sll2 = lambda p: struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, bytes(8)) + p
    wraps = [(0, lambda p: eth(p)), (1, lambda p: p), (2, sll2)]
    frames = []
    for i, (t, p) in enumerate(conv):
        iface, wrap = wraps[i % 3]
        frames.append((iface, t, wrap(p)))
    write_pcapng("multi-iface.pcapng", [(1, 6), (101, 9), (276, 6)], frames)
    # 4. Linux SLL (v1) and BSD NULL link types.
    sll = lambda p: struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x0800) + p
    write_pcap("sll.pcap", [(t, sll(p)) for t, p in conv], 113)
    write_pcap("null.pcap", [(t, struct.pack("<I", 2) + p) for t, p in conv], 0)
    # 5. Cut in the middle of the 6th record's data: 5 complete records.
    full = write_pcap("truncated-record.pcap", [(t, eth(p)) for t, p in conv], 1)
    cut = 24 + sum(16 + len(eth(p)) for _, p in conv[:5]) + 16 + 10
    with open(os.path.join(OUT, "truncated-record.pcap"), "wb") as fh:
        fh.write(full[:cut])
    # 6. Malformed frames: IPv4 total length beyond the frame, TCP header cut
    #    short, a frame too short for Ethernet, UDP length below 8.
    bad = []
    p = ipv4(C, S, 6, tcp(C, S, 40003, 80, 1, 0, SY))
    bad.append((0.0, eth(p[:30])))  # IPv4 header promises 40 bytes
    short_tcp = ipv4(C, S, 6, tcp(C, S, 40004, 80, 1, 0, SY)[:12])
    bad.append((0.1, eth(short_tcp)))
    bad.append((0.2, bytes(10)))
    u = bytearray(ipv4(C, R, 17, udp(C, R, 5000, 53, b"abcd")))
    u[24:26] = struct.pack("!H", 4)
    bad.append((0.3, eth(bytes(u))))
    write_pcap("malformed-frames.pcap", bad, 1)
    capture_oddities(conv)


def capture_oddities(conv):
    """Captures whose container is odd but readable, or broken on purpose."""
    # 7. No packets at all: a pcap header alone, a pcapng section and
    #    interface alone.
    write_pcap("zero-packets.pcap", [], 1)
    with open(os.path.join(OUT, "zero-packets.pcapng"), "wb") as fh:
        fh.write(ng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + ng_block(1, struct.pack("<HHI", 1, 0, 0)))
    # 8. Snap length 0xffffffff in the header (libpcap writes at most
    #    262144): the records are ordinary.
    write_pcap("huge-snaplen.pcap", [(t, eth(p)) for t, p in conv], 1, snaplen=0xFFFFFFFF)
    # 9. Snap length 64 while most records are longer: read as captured.
    write_pcap("caplen-over-snaplen.pcap", [(t, eth(p)) for t, p in conv], 1, snaplen=64)
    # 10. Snap length 0xffffffff, two records, then a record header whose
    #     length (16 MiB + 1) is beyond any capture format's limit.
    out = write_pcap("bad-record-length.pcap", [(t, eth(p)) for t, p in conv[:2]], 1, snaplen=0xFFFFFFFF)
    sec, frac = ts_parts(conv[2][0], False)
    out += struct.pack("<IIII", sec, frac, (1 << 24) + 1, (1 << 24) + 1) + bytes(64)
    with open(os.path.join(OUT, "bad-record-length.pcap"), "wb") as fh:
        fh.write(out)
    # 11. pcapng oddities around the reference conversation:
    #     section 1, little-endian: Ethernet interface (microseconds), a
    #       block of a type no one defined, a name resolution block, the
    #       TCP packets, a packet block for interface 3 (never described),
    #       a simple packet block (an ARP request: no timestamp, no flow);
    #     section 2, big-endian: raw IP interface with if_tsresol 2^-20 s
    #       and if_tsoffset T0 (timestamps count from T0), an interface
    #       statistics block, the other packets;
    #     section 3, little-endian: a packet block before any interface.
    shb = lambda e: ng_block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)
    out = shb("<")
    out += ng_block(1, struct.pack("<HHI", 1, 0, 0) + ng_option(0, b""))
    out += ng_block(0x70000BAD, b"not a block anyone defined")
    out += ng_block(4, struct.pack("<HH", 1, 8) + ip4(S) + b"srv\0" + struct.pack("<HH", 0, 0))
    epb = lambda iface, ts, data, e="<": ng_block(
        6, struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data)) + data, e)
    us = lambda off: int(round((T0 + off) * 1e6))
    tcp_part = [(t, p) for t, p in conv if p[9] == 6][:8]
    rest = [(t, p) for t, p in conv if (t, p) not in tcp_part]
    for t, p in tcp_part:
        out += epb(0, us(t), eth(p))
    out += epb(3, us(tcp_part[-1][0]), eth(tcp_part[-1][1]))
    arp = eth(bytes.fromhex("0001080006040001020000000001") + ip4(C) + bytes(6) + ip4(S), ethertype=0x0806)
    out += ng_block(3, struct.pack("<I", len(arp)) + arp)
    out += shb(">")
    opts = ng_option(9, bytes([0x80 | 20]), ">") + ng_option(14, struct.pack(">q", T0), ">") + ng_option(0, b"", ">")
    out += ng_block(1, struct.pack(">HHI", 101, 0, 0) + opts, ">")
    for t, p in rest:
        # Units of 2^-20 s since T0, rounded up: reads back as t to the microsecond.
        units = -(-round(t * 1e6) * (1 << 20) // 10**6)
        out += epb(0, units, p, ">")
    out += ng_block(5, struct.pack(">IIIHH", 0, 0, 0, 0, 0), ">")
    out += shb("<")
    out += epb(0, us(rest[-1][0]), eth(rest[-1][1]))
    with open(os.path.join(OUT, "odd-sections.pcapng"), "wb") as fh:
        fh.write(out)
    # 12. The three-interface pcapng cut inside its 10th block (a packet
    #     block): the blocks before it are read.
    with open(os.path.join(OUT, "multi-iface.pcapng"), "rb") as fh:
        ng = fh.read()
    pos = 0
    for _ in range(9):
        pos += struct.unpack_from("<I", ng, pos + 4)[0]
    with open(os.path.join(OUT, "truncated-block.pcapng"), "wb") as fh:
        fh.write(ng[: pos + 30])


if __name__ == "__main__":
    main()
