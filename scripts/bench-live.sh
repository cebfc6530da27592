#!/usr/bin/env bash
# Live-capture benchmark: how fast can traffic arrive on an interface before
# `backflow live` drops any of it?
#
#   sudo scripts/bench-live.sh [--quick] [DIR]     (DIR default /tmp/backflow-bench-live)
#
# Builds two network namespaces joined by a veth pair, runs `backflow live`
# (built with --features live, into target/live/) on the receiving end and
# replays generated captures onto the sending end with tcpreplay (Debian
# package tcpreplay): first --topspeed, then at fixed packet rates, with 1
# worker and with one per core. For each run it prints the rate tcpreplay
# achieved, the packets it sent, what backflow counted on the interface and
# the drops from its stats.json (`backflow.source.interfaces[*]`): kernel
# drops (the capture buffer overflowed: the capture thread fell behind) and
# queue drops (a worker queue was full: the workers fell behind), and the
# average frames per batch handed to a worker (the queues hold batches). When some
# rate dropped and a slower one did not, two more rates between them narrow
# it down. Then, per capture and worker count, the highest rate with no drop
# at all and the slowest with drops, naming the stage that dropped. Results
# also go to DIR/bench-live.jsonl.
#
# Captures (seed 1, 1000 connections at once): mixed (TCP sessions with data
# and DNS, about 900 bytes a frame; the mix is printed) and a spoofed SYN
# flood (60-byte frames), 300k packets each (--quick: 20k and fewer rates). Each rate sends at most 3
# seconds' worth of packets, so the whole run is bounded (2 to 4 minutes).
#
# Safety: the namespaces (bfbl-a-PID, bfbl-b-PID) have no addresses and no
# routes, IPv6 is off on the veths, and the frames are sent as captured (their
# destination MAC is not the receiving veth's, so its kernel drops them
# before IP; backflow sees them in promiscuous mode, its default): nothing
# is forwarded, answered or sent anywhere else. Every tcpreplay and backflow
# is bounded by `timeout`; the namespaces are deleted by name on exit.
set -euo pipefail

quick=0
if [ "${1:-}" = --quick ]; then quick=1; shift; fi
dir=${1:-/tmp/backflow-bench-live}
root=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "bench-live.sh: needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpreplay timeout python3; do
  command -v $t >/dev/null ||
    { echo "bench-live.sh: needs $t (apt-get install iproute2 tcpreplay coreutils python3)" >&2; exit 1; }
done
echo "building with --features live (target/live)" >&2
(cd "$root" && cargo build --release --quiet --features live --target-dir "$root/target/live")
bin=$root/target/live/release/backflow
cores=$(nproc)
mkdir -p "$dir"
json=$dir/bench-live.jsonl
: >"$json"
work=$(mktemp -d)

if [ $quick = 1 ]; then
  packets=20000 rates=(20000 80000)
else
  packets=300000 rates=(25000 50000 100000 200000 400000 800000)
fi
seconds=3

ns_a=bfbl-a-$$ ns_b=bfbl-b-$$ veth_a=bfbla$$ veth_b=bfblb$$
bf=
cleanup() {
  if [ -n "$bf" ]; then kill -KILL "$bf" 2>/dev/null || true; fi
  ip netns del "$ns_a" 2>/dev/null || true
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" netns "$ns_a" type veth peer name "$veth_b" netns "$ns_b"
for pair in "$ns_a $veth_a" "$ns_b $veth_b"; do
  set -- $pair
  # No IPv6 (router solicitations, DAD) and no addresses: the only frames
  # on the link are the replayed ones.
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
  ip -n "$1" link set "$2" up
done

gen() { # file, kind
  local f=$dir/$1
  if [ ! -s "$f" ]; then
    # 1000 connections at once: even the --quick capture has their data.
    "$bin" gen-pcap --kind "$2" --packets $packets --concurrent 1000 --seed 1 \
      -o "$f.tmp" 2>/dev/null
    mv "$f.tmp" "$f"
  fi
}
gen mixed-$packets.pcap mixed
gen synflood-$packets.pcap synflood

# The packet mix of a capture, from an offline read.
mix() {
  rm -rf "$work/mix"
  "$bin" read "$1" -o "$work/mix" -q --workers 1
  python3 - "$work/mix/stats.json" <<'PY'
import json, sys
s = json.loads([l for l in open(sys.argv[1]) if l.strip()][-1])["stats"]
d, t, f = s["decoder"], s["tcp"], s["flow"]
n = d["pkts"]
print(f"{n} packets, average {d['avg_pkt_size']} bytes (max {d['max_pkt_size']}), "
      f"TCP {100 * d['tcp'] / n:.1f}% UDP {100 * d['udp'] / n:.1f}%, "
      f"SYN {100 * t['syn'] / n:.1f}%, {f['total']} flows")
PY
}

# Last stats record of a live run: the (only) interface's counters.
iface_stats() {
  python3 - "$1" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
b = json.loads(lines[-1])["backflow"]
i = b["source"]["interfaces"][0]
# Batches that reached a worker (one queue-latency sample each).
batches = b["counters"]["latency"]["queue"]["count"]
per = (i["packets"] - i["queue_drops"]) / batches if batches else 0
print(f"got={i['packets']} kpkts={i['kernel_packets']} kdrops={i['kernel_drops']} "
      f"ifdrops={i['kernel_ifdrops']} qdrops={i['queue_drops']} batch={per:.0f}")
PY
}

# One replay: capture, workers, rate (topspeed or packets/s). Sets the
# fields of the result row.
replay() {
  local file=$dir/$1 workers=$2 rate=$3 out=$work/out limit
  rm -rf "$out"
  mkdir -p "$out"
  # --foreground: timeout passes our SIGTERM to backflow only, not to its
  # whole process group as well (a second SIGTERM makes backflow exit at
  # once, status 130, without draining).
  ip netns exec "$ns_b" timeout --foreground 120 "$bin" live -i "$veth_b" --workers "$workers" \
    -o "$out" -q 2>"$work/bf.err" &
  bf=$!
  local deadline=$((SECONDS + 20))
  until [ -e "$out/eve.json" ]; do
    if [ $SECONDS -gt $deadline ] || ! kill -0 "$bf" 2>/dev/null; then
      echo "bench-live.sh: backflow live did not start" >&2; cat "$work/bf.err" >&2; exit 1
    fi
    sleep 0.05
  done
  local args=(--topspeed)
  limit=$packets
  if [ "$rate" != topspeed ]; then
    args=(--pps="$rate")
    limit=$((rate * seconds < packets ? rate * seconds : packets))
  fi
  ip netns exec "$ns_a" timeout 60 tcpreplay --intf1="$veth_a" "${args[@]}" \
    --limit="$limit" "$file" >"$work/replay" 2>&1 ||
    { echo "bench-live.sh: tcpreplay failed" >&2; cat "$work/replay" >&2; exit 1; }
  # Let the capture buffer and the queues drain, then stop backflow.
  sleep 1
  kill -TERM "$bf"
  local rc=0
  wait "$bf" || rc=$?
  if [ $rc != 0 ]; then
    echo "bench-live.sh: backflow live failed (exit $rc)" >&2; cat "$work/bf.err" >&2; exit 1
  fi
  bf=
  sent=$(sed -n 's/^Actual: \([0-9]*\) packets.*/\1/p' "$work/replay")
  pps=$(sed -n 's/^Rated: .*, \([0-9.]*\) pps.*/\1/p' "$work/replay")
  mbps=$(sed -n 's/^Rated: .* \([0-9.]*\) Mbps.*/\1/p' "$work/replay")
  failed=$(sed -n 's/^[[:space:]]*Failed packets:[[:space:]]*\([0-9]*\).*/\1/p' "$work/replay")
  eval "$(iface_stats "$out/stats.json")"
}

row() { printf '%-18s %-4s %-9s %10s %9s %8s %8s %7s %8s %8s %8s %6s\n' "$@"; }
echo
for f in mixed-$packets.pcap synflood-$packets.pcap; do
  echo "$f: $(mix "$dir/$f")"
done
echo
row capture w rate sent pps Mbit/s counted failed kdrops ifdrops qdrops batch
declare -A best first
# One replay and its row; keeps the fastest run without drops (best) and
# the slowest run with drops (first, with the stage that dropped).
try_rate() { # capture, workers, rate
  local name=${1%.pcap} key=${1%.pcap}/$2 clean=0
  replay "$1" "$2" "$3"
  row "$name" "$2" "$3" "$sent" "$(printf %.0f "$pps")" "$mbps" "$got" \
    "${failed:-0}" "$kdrops" "$ifdrops" "$qdrops" "$batch"
  if [ $((kdrops + ifdrops + qdrops)) = 0 ] && [ "$got" = "$sent" ]; then clean=1; fi
  if [ $clean = 1 ]; then
    if [ "${best[$key]}" = none ] || awk "BEGIN{exit !($pps > ${best[$key]})}"; then
      best[$key]=$pps
    fi
  elif [ "${first[$key]}" = none ] || awk "BEGIN{exit !($pps < ${first[$key]%% *})}"; then
    local stage=
    [ $((kdrops + ifdrops)) = 0 ] || stage="kernel drops $((kdrops + ifdrops)): the capture thread fell behind"
    [ "$qdrops" = 0 ] || stage="${stage:+$stage; }queue drops $qdrops: the workers fell behind"
    [ -n "$stage" ] || stage="$((sent - got)) not captured"
    first[$key]="$pps ($stage)"
  fi
  printf '{"type":"live","capture":"%s","workers":%d,"rate":"%s","sent":%d,"pps":%s,"mbps":%s,"counted":%d,"kernel_packets":%d,"kernel_drops":%d,"kernel_ifdrops":%d,"queue_drops":%d,"send_failed":%d,"frames_per_batch":%d,"no_drop":%s}\n' \
    "$name" "$2" "$3" "$sent" "$pps" "$mbps" "$got" "$kpkts" "$kdrops" "$ifdrops" \
    "$qdrops" "${failed:-0}" "$batch" "$([ $clean = 1 ] && echo true || echo false)" >>"$json"
}
for f in mixed-$packets.pcap synflood-$packets.pcap; do
  name=${f%.pcap}
  for w in $(printf '%s\n' 1 "$cores" | sort -un); do
    key=$name/$w
    best[$key]=none first[$key]=none
    try_rate "$f" "$w" topspeed
    top=$pps
    for rate in "${rates[@]}"; do
      # Rates tcpreplay cannot reach here are not tried.
      awk "BEGIN{exit !($rate <= 1.1 * $top)}" || continue
      try_rate "$f" "$w" "$rate"
    done
    # Two bisection steps between the fastest rate without drops and the
    # slowest with drops, when both are known.
    for _ in 1 2; do
      [ "${best[$key]}" != none ] && [ "${first[$key]}" != none ] || break
      mid=$(awk "BEGIN{printf \"%d\", int((${best[$key]} + ${first[$key]%% *}) / 2000) * 1000}")
      awk "BEGIN{exit !($mid > ${best[$key]} * 1.05)}" || break
      try_rate "$f" "$w" "$mid"
    done
  done
done
echo
for f in mixed-$packets.pcap synflood-$packets.pcap; do
  name=${f%.pcap}
  for w in $(printf '%s\n' 1 "$cores" | sort -un); do
    b=${best[$name/$w]} d=${first[$name/$w]}
    [ "$b" = none ] || b="$(printf %.0f "$b") packets/s"
    if [ "$d" = none ]; then
      d="no rate tried dropped"
    else
      d="drops at $(printf %.0f "${d%% *}") packets/s ${d#* }"
    fi
    echo "$name, $w worker(s): highest rate with no drop $b; $d"
    printf '{"type":"live_summary","capture":"%s","workers":%d,"no_drop":"%s","drops":"%s"}\n' \
      "$name" "$w" "$b" "$d" >>"$json"
  done
done
echo "results in $json"
