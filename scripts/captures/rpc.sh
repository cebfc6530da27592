#!/usr/bin/env bash
# Build pcaps/rpc: RPC clients on reserved ports, captured from real tools.
#
#   sudo bash scripts/captures/rpc.sh [OUTDIR]      (default OUTDIR: pcaps/rpc)
#
# Two network namespaces joined by one veth pair, with only their on-link
# route: bfrpc-c (10.30.1.20, the client) and bfrpc-s (10.30.1.21, the
# server). The server runs rpcbind and rpc.statd (NSM, RPC program 100024),
# each in a private /run; the client runs rpcinfo, which as root binds a
# reserved source port (libtirpc's bindresvport) for every connection, as
# mount.nfs, the kernel's lockd and statd do. tcpdump on the client's veth
# writes OUTDIR/rpcinfo.pcap. Every tool runs under `timeout 60`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$HERE/../../pcaps/rpc}
C=bfrpc-c S=bfrpc-s T=60
[[ $EUID -eq 0 ]] || { echo "rpc.sh: must run as root: sudo bash $0" >&2; exit 1; }
for t in ip tcpdump rpcbind rpc.statd rpcinfo unshare; do
  command -v $t >/dev/null || {
    echo "rpc.sh: needs $t (apt-get install -y iproute2 tcpdump rpcbind nfs-common util-linux)" >&2
    exit 1
  }
done
cleanup() {
  for ns in $C $S; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill $p 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
}
trap cleanup EXIT
cleanup
mkdir -p "$OUT"
ip netns add $C
ip netns add $S
ip link add vrpc-c netns $C type veth peer name vrpc-s netns $S
ip -n $C addr add 10.30.1.20/24 dev vrpc-c
ip -n $S addr add 10.30.1.21/24 dev vrpc-s
for ns in $C $S; do ip -n $ns link set lo up; done
ip -n $C link set vrpc-c up
ip -n $S link set vrpc-s up
sleep 1

# statd: first on the port RHEL pins it to (662, itself a reserved port),
# then on a port of rpcbind's choosing.
server() {
  ip netns exec $S unshare --mount sh -c "mount -t tmpfs tmpfs /run &&
    (timeout $T rpcbind -f &) && sleep 0.5 && exec timeout $T rpc.statd -F $*" \
    >/dev/null 2>&1 &
  sleep 1.5
}
queries() {
  ip netns exec $C timeout $T rpcinfo -p 10.30.1.21 >/dev/null
  ip netns exec $C timeout $T rpcinfo -t 10.30.1.21 status
  ip netns exec $C timeout $T rpcinfo -u 10.30.1.21 status
}

f=$OUT/rpcinfo.pcap
rm -f "$f"
ip netns exec $C timeout $T tcpdump -i vrpc-c -n -U -w "$f" 'ip and not arp' 2>/dev/null &
cap=$!
sleep 1.5
server -p 662 -o 663
queries
for ns in $S; do for p in $(ip netns pids $ns); do kill $p; done; done
sleep 1
server
queries
sleep 1
kill -INT $cap
wait $cap || true
echo "rpc.sh: wrote $f"
