#!/usr/bin/env python3
"""Check pcaps/lab/ground-truth.tsv against the packets (needs tshark, capinfos).

  verify.py OUTDIR

For every ground-truth line it looks for the traffic the line claims:
scans (many distinct ports src->dst), sweeps (many hosts on one port),
floods (many bare SYNs), brute force (many connections), and for the other
kinds a SYN from source to target answered by a SYN-ACK (UDP: at least one
datagram; a reply is reported, not required, since exfiltration may be one-way).
A benign line only needs traffic between its endpoints (ICMP included).
Prints one line per check and exits 1 if any check fails.
"""
import csv
import os
import subprocess
import sys
from collections import namedtuple

Pkt = namedtuple("Pkt", "src dst proto sport dport syn ack")
MAX_BYTES = 400 * 1024


def endpoint(s):
    if s == "*":
        return None, None
    if s.startswith("["):
        addr, _, port = s[1:].partition("]:")
        return addr, int(port)
    if s.count(":") == 1:
        addr, port = s.split(":")
        return (None if addr == "*" else addr), int(port)
    return s, None


def first(v):
    return v.split(",")[0] if v else ""


def load(path):
    fields = ["frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport",
              "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags.syn", "tcp.flags.ack"]
    cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    pkts = []
    for line in out.splitlines():
        v = (line.split("\t") + [""] * len(fields))[:len(fields)]
        protos = v[0].split(":")
        src = first(v[1]) or first(v[3])
        dst = first(v[2]) or first(v[4])
        if not src:
            continue  # ARP etc.
        if "icmp" in protos or "icmpv6" in protos:
            pkts.append(Pkt(src, dst, "icmp", None, None, False, False))
        elif "tcp" in protos:
            pkts.append(Pkt(src, dst, "tcp", int(first(v[5])), int(first(v[6])),
                            first(v[9]) in ("1", "True"), first(v[10]) in ("1", "True")))
        elif "udp" in protos:
            pkts.append(Pkt(src, dst, "udp", int(first(v[7])), int(first(v[8])), False, False))
    return pkts


def match(p, s_addr, s_port, d_addr, d_port):
    return ((s_addr is None or p.src == s_addr) and (s_port is None or p.sport == s_port)
            and (d_addr is None or p.dst == d_addr) and (d_port is None or p.dport == d_port))


def check(kind, pkts, src, dst):
    (sa, sp), (da, dp) = endpoint(src), endpoint(dst)
    if kind == "benign":
        anyp = [p for p in pkts if match(p, sa, sp, da, dp) or (p.proto == "icmp" and match(p, sa, None, da, None))]
        back = [p for p in pkts if match(p, da, dp, sa, sp) or (p.proto == "icmp" and match(p, da, None, sa, None))]
        return bool(anyp), "%d packets fwd, %d rev (incl. icmp)" % (len(anyp), len(back))
    fwd = [p for p in pkts if p.proto != "icmp" and match(p, sa, sp, da, dp)]
    rev = [p for p in pkts if p.proto != "icmp" and match(p, da, dp, sa, sp)]
    syns = [p for p in fwd if p.proto == "tcp" and p.syn and not p.ack]
    synacks = [p for p in rev if p.proto == "tcp" and p.syn and p.ack]
    if kind == "port_scan":
        ports = {(p.proto, p.dport) for p in fwd}
        return len(ports) >= 10, "%d distinct dst ports probed, %d probes, %d replies" % (len(ports), len(fwd), len(rev))
    if kind == "port_sweep":
        hosts = {p.dst for p in fwd}
        return len(hosts) >= 20, "%d distinct hosts probed on port %s, %d probes" % (len(hosts), dp, len(fwd))
    if kind == "syn_flood":
        srcs = {p.src for p in syns}
        return len(syns) >= 500, "%d SYNs from %d sources, %d SYN-ACKs back" % (len(syns), len(srcs), len(synacks))
    if kind == "brute_force":
        conns = {p.sport for p in syns}
        return len(conns) >= 8, "%d connections (SYNs), %d SYN-ACKs" % (len(conns), len(synacks))
    if any(p.proto == "tcp" for p in fwd):
        return bool(syns and synacks), "%d SYN, %d SYN-ACK, %d/%d packets fwd/rev" % (len(syns), len(synacks), len(fwd), len(rev))
    return bool(fwd), "%d/%d udp packets fwd/rev" % (len(fwd), len(rev))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "pcaps/lab"
    with open(os.path.join(out, "ground-truth.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    cache, bad = {}, 0
    for r in rows:
        path = os.path.join(out, r["file"])
        if r["file"] not in cache:
            cache[r["file"]] = load(path)
        ok, detail = check(r["kind"], cache[r["file"]], r["source"], r["target"])
        bad += not ok
        print("%s %-28s %-18s %-22s -> %-24s %s" % ("OK  " if ok else "FAIL", r["file"], r["kind"],
                                                     r["source"], r["target"], detail))
    for name in sorted(cache):
        size = os.path.getsize(os.path.join(out, name))
        if size > MAX_BYTES:
            bad += 1
            print("FAIL %s is %d bytes (> %d)" % (name, size, MAX_BYTES))
    print("%d ground-truth lines checked, %d pcaps, %d failure(s)" % (len(rows), len(cache), bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
