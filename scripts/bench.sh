#!/usr/bin/env bash
# End-to-end benchmark: generates the captures once (deterministic), then
# times `cat FILE > /dev/null` and `backflow read` with 1 and all workers on
# the same file, from the page cache. Prints wall time, packets/s, Gbit/s,
# peak RSS and the ratio to cat.
#
#   scripts/bench.sh [--quick] [DIR]      (DIR default: /tmp/backflow-bench)
#
# --quick uses 100k-packet files (CI checks that the script works; its
# numbers are not the published ones).
set -euo pipefail
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
dir=${1:-/tmp/backflow-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/backflow
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
(cd "$root" && cargo build --release --quiet)
mkdir -p "$dir"
if [ $quick = 1 ]; then mixed=100k; flood=200k; else mixed=1M; flood=2M; fi
gen() { # name kind packets
  [ -s "$dir/$1" ] || "$bin" gen-pcap --kind "$2" --packets "$3" --seed 1 -o "$dir/$1" 2>/dev/null
}
gen mixed-$mixed.pcap mixed $mixed
gen synflood-$flood.pcap synflood $flood
gen scan-$mixed.pcap scan $mixed
cores=$(nproc)

tfile=$(mktemp)
trap 'rm -f "$tfile"' EXIT
best() { # runs a command 3 times, prints the best wall seconds and its peak RSS (KB)
  local b=999999 rss=0
  for _ in 1 2 3; do
    local start end t m
    start=$EPOCHREALTIME
    /usr/bin/time -o "$tfile" -f "%M" "$@" >/dev/null 2>&1
    end=$EPOCHREALTIME
    t=$(awk "BEGIN{printf \"%.4f\", $end - $start}")
    m=$(tail -1 "$tfile")
    if awk "BEGIN{exit !($t < $b)}"; then b=$t; rss=$m; fi
  done
  echo "$b $rss"
}

printf "%-22s %-9s %8s %12s %8s %10s %8s\n" file run wall_s packets/s Gbit/s peakRSS_MB x_cat
for f in mixed-$mixed.pcap synflood-$flood.pcap scan-$mixed.pcap; do
  path=$dir/$f
  cat "$path" >/dev/null
  pkts=$("$bin" read "$path" -o "$dir/out" --workers 1 2>&1 | sed -n 's/^backflow: \([0-9]*\) packets.*/\1/p')
  bytes=$(stat -c %s "$path")
  read -r ct _ < <(best sh -c "cat '$path' > /dev/null")
  printf "%-22s %-9s %8s %12s %8s %10s %8s\n" "$f" cat "$ct" - "$(awk "BEGIN{printf \"%.2f\", $bytes*8/$ct/1e9}")" - 1.00
  for w in 1 $cores; do
    rm -rf "$dir/out"
    read -r t rss < <(best "$bin" read "$path" -o "$dir/out" -q --workers $w)
    printf "%-22s %-9s %8s %12.0f %8.2f %10.0f %8.2f\n" "$f" "w=$w" "$t" \
      "$(awk "BEGIN{print $pkts/$t}")" "$(awk "BEGIN{print $bytes*8/$t/1e9}")" \
      "$(awk "BEGIN{print $rss/1024}")" "$(awk "BEGIN{print $t/$ct}")"
  done
done
rm -rf "$dir/out"
