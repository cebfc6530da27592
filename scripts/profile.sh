#!/usr/bin/env bash
# Where `backflow read` spends its time: profiles the 1-worker run over the
# mixed capture and the SYN-flood run (one worker per core), and prints for
# each the top 25 functions by self time and the share of each thread.
#
#   scripts/profile.sh [--callgrind] [DIR]
#
# With perf (Debian: linux-perf) it records `perf record -g` with the
# software clock (cpu-clock; this machine class has no hardware counters)
# over the same captures as scripts/bench.sh (mixed 1M packets, SYN flood 2M,
# generated from seed 1 into DIR, default /tmp/backflow-bench, and shared
# with it). Without perf, or with --callgrind, it runs valgrind's callgrind
# on smaller captures (mixed 50k, flood 200k: callgrind is ~50x slower) and
# ranks by instructions executed (Ir) instead of time.
#
# Self time is exact whatever the unwinding; call chains (`-g`, frame
# pointers) are partial because the standard library is built without frame
# pointers: PROFILE_CALLGRAPH=dwarf records DWARF call graphs instead (much
# larger files). The recordings stay in DIR/profile/ for `perf report -i`.
# Inlined functions count in the function they were inlined into.
set -euo pipefail

tool=perf
if [ "${1:-}" = --callgrind ]; then tool=callgrind; shift; fi
dir=${1:-/tmp/backflow-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/target/release/backflow
if [ $tool = perf ] && ! perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1; then
  echo "profile.sh: perf is not usable here; using callgrind" >&2
  tool=callgrind
fi
if [ $tool = callgrind ] && ! command -v valgrind >/dev/null; then
  echo "profile.sh: needs perf (apt-get install linux-perf) or valgrind (apt-get install valgrind)" >&2
  exit 1
fi
(cd "$root" && cargo build --release --quiet)
cores=$(nproc)

if [ $tool = perf ]; then mixed=1M flood=2M; else mixed=50k flood=200k; fi
# The same files and cache as scripts/bench.sh.
cap=$dir/gen-$(sha256sum "$root/src/traffic.rs" | cut -c1-12)
mkdir -p "$cap" "$dir/profile"
gen() { # file, gen-pcap arguments...
  local f=$cap/$1; shift
  if [ ! -s "$f" ]; then
    echo "generating $(basename "$f")" >&2
    "$bin" gen-pcap "$@" --seed 1 -o "$f.tmp" 2>"$f.err"
    sed -n 's/^backflow: wrote \([0-9]*\) packets$/\1/p' "$f.err" >"$f.count"
    rm -f "$f.err"
    mv "$f.tmp" "$f"
  fi
}
gen mixed-$mixed.pcap --kind mixed --packets $mixed
gen synflood-$flood.pcap --kind synflood --packets $flood
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

profile() { # name, capture, workers
  local name=$1 file=$cap/$2 workers=$3
  echo
  echo "== $name: backflow read $2 --workers $workers ($tool)"
  cat "$file" >/dev/null
  rm -rf "$out/eve"
  if [ $tool = perf ]; then
    local data=$dir/profile/$name.perf.data
    local graph=(-g)
    [ "${PROFILE_CALLGRAPH:-}" = dwarf ] && graph=(--call-graph dwarf)
    perf record -q -e cpu-clock -F 1999 "${graph[@]}" -o "$data" -- \
      "$bin" read "$file" -o "$out/eve" --workers "$workers" 2>"$out/log" ||
      { cat "$out/log" >&2; echo "profile.sh: the run failed" >&2; exit 1; }
    grep '^backflow:' "$out/log" || true
    echo "-- threads (share of samples)"
    perf report -i "$data" --no-children --sort comm --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -8 || true
    echo "-- top 25 functions by self time"
    perf report -i "$data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -25 || true
  else
    local data=$dir/profile/$name.callgrind.out
    valgrind -q --tool=callgrind --error-exitcode=1 --callgrind-out-file="$data" \
      "$bin" read "$file" -o "$out/eve" --workers "$workers" 2>"$out/log" ||
      { cat "$out/log" >&2; echo "profile.sh: the run failed" >&2; exit 1; }
    grep '^backflow:' "$out/log" || true
    echo "-- top 25 functions by instructions executed (self)"
    # callgrind_annotate splits a function by the source file of each line
    # (inlined code); add the parts up per function.
    callgrind_annotate --inclusive=no --auto=no --threshold=99.9 "$data" 2>/dev/null | python3 -c '
import re, sys
total, by_fn = 0, {}
for line in sys.stdin:
    m = re.match(r"^\s*([0-9,]+) \(\s*[0-9.]+%\)\s+(.*)$", line)
    if not m:
        continue
    n, what = int(m.group(1).replace(",", "")), m.group(2)
    if what.startswith("PROGRAM TOTALS"):
        total = n
        continue
    fn = re.sub(r" \[[^]]*\]$", "", what).split(":", 1)[-1]
    by_fn[fn] = by_fn.get(fn, 0) + n
for fn, n in sorted(by_fn.items(), key=lambda kv: -kv[1])[:25]:
    print(f"{100 * n / max(total, 1):8.2f}%  {fn}")
'
  fi
}

profile mixed-1worker mixed-$mixed.pcap 1
profile synflood-${cores}workers synflood-$flood.pcap "$cores"
echo
echo "recordings in $dir/profile/"
