#!/usr/bin/env python3
"""Tiny UDP services for the lab: a DNS responder and an NTP server, and their clients.

  udp_service.py serve dns --bind ADDR [--port 53] [--answer 198.51.100.80]
  udp_service.py serve ntp --bind ADDR [--port 123]
  udp_service.py query dns --bind SRC --server ADDR NAME...
  udp_service.py query ntp --bind SRC --server ADDR [--count N]

With --tcp, DNS runs over TCP instead (RFC 1035 4.2.2: two-byte length
prefix), one query per connection.
"""
import argparse
import socket
import struct
import sys
import time

NTP_EPOCH = 2208988800


def ntp_ts(t):
    sec = int(t) + NTP_EPOCH
    frac = int((t % 1) * (1 << 32))
    return struct.pack("!II", sec, frac)


def dns_query(name, qid):
    hdr = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return hdr + q + struct.pack("!HH", 1, 1)


def dns_answer(pkt, answer):
    qid, flags, qd = struct.unpack("!HHH", pkt[:6])
    i = 12
    while pkt[i] != 0:
        i += pkt[i] + 1
    qend = i + 5
    question = pkt[12:qend]
    qtype = struct.unpack("!H", pkt[i + 1:i + 3])[0]
    ans = b""
    if qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + socket.inet_aton(answer)
    hdr = struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if ans else 0, 0, 0)
    return hdr + question + ans


def serve_dns_tcp(bind, port, answer):
    import socketserver

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            c = self.request
            c.settimeout(5)
            head = c.recv(2)
            if len(head) < 2:
                return
            n = struct.unpack("!H", head)[0]
            pkt = b""
            while len(pkt) < n:
                chunk = c.recv(n - len(pkt))
                if not chunk:
                    return
                pkt += chunk
            try:
                resp = dns_answer(pkt, answer)
            except Exception as e:  # malformed query: drop the connection
                sys.stderr.write("bad query: %s\n" % e)
                return
            c.sendall(struct.pack("!H", len(resp)) + resp)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    sys.stderr.write("dns/tcp server on %s:%d\n" % (bind, port))
    Server((bind, port), Handler).serve_forever()


def query_dns_tcp(bind, server, port, names):
    for n, name in enumerate(names):
        pkt = dns_query(name, 0x5000 + n)
        s = socket.create_connection((server, port), timeout=2, source_address=(bind, 0))
        s.sendall(struct.pack("!H", len(pkt)) + pkt)
        data = s.recv(4096)
        s.close()
        print("dns/tcp reply %d bytes for %s" % (len(data), name))
        time.sleep(0.2)


def serve(kind, bind, port, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, port))
    sys.stderr.write("%s server on %s:%d\n" % (kind, bind, port))
    while True:
        pkt, peer = s.recvfrom(2048)
        try:
            if kind == "dns":
                s.sendto(dns_answer(pkt, answer), peer)
            else:
                now = time.time()
                resp = bytes([0x24, 2, pkt[2] if len(pkt) > 2 else 6, 0xE9]) + b"\0" * 8 + b"GPS\0"
                resp += ntp_ts(now - 10) + pkt[40:48].ljust(8, b"\0") + ntp_ts(now) + ntp_ts(time.time())
                s.sendto(resp, peer)
        except Exception as e:  # malformed probe (e.g. from a scanner): ignore
            sys.stderr.write("bad packet from %s: %s\n" % (peer, e))


def query(kind, bind, server, port, names, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind, 0))
    s.settimeout(2)
    items = names if kind == "dns" else range(count)
    for n, item in enumerate(items):
        if kind == "dns":
            pkt = dns_query(item, 0x4000 + n)
        else:
            pkt = b"\x23" + b"\0" * 39 + ntp_ts(time.time())
        s.sendto(pkt, (server, port))
        try:
            data, _ = s.recvfrom(2048)
            print("%s reply %d bytes for %s" % (kind, len(data), item))
        except socket.timeout:
            print("%s timeout for %s" % (kind, item))
        time.sleep(0.2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["serve", "query"])
    ap.add_argument("kind", choices=["dns", "ntp"])
    ap.add_argument("--bind", required=True)
    ap.add_argument("--server")
    ap.add_argument("--port", type=int)
    ap.add_argument("--answer", default="198.51.100.80")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--tcp", action="store_true", help="DNS over TCP")
    ap.add_argument("names", nargs="*")
    a = ap.parse_intermixed_args()
    port = a.port or (53 if a.kind == "dns" else 123)
    if a.tcp and a.kind == "dns":
        if a.action == "serve":
            serve_dns_tcp(a.bind, port, a.answer)
        else:
            query_dns_tcp(a.bind, a.server, port, a.names)
    elif a.action == "serve":
        serve(a.kind, a.bind, port, a.answer)
    else:
        query(a.kind, a.bind, a.server, port, a.names, a.count)


if __name__ == "__main__":
    main()
