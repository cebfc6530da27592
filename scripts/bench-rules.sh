#!/usr/bin/env bash
# Per-packet CPU cost of `backflow read` (one worker) with 0, 1000 and all
# loadable ET Open rules, on a generated mixed capture and, when present, on
# the public normal/ captures. The cost per packet is that of a run over N
# packets less that of a run over the first 1000 of them, so what a run pays
# once (start-up, loading the rules) is left out; the totals of the N-packet
# runs are printed too. Runs are interleaved and the best of each is kept,
# so other load on the machine hurts all alike.
#
#   scripts/bench-rules.sh [OUTDIR] [ROUNDS]
#
# Needs ../shared/rules/et-open, python3 and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/backflow-bench-rules}
rounds=${2:-7}
et=../shared/rules/et-open
bin=target/release/backflow
[ -d "$et" ] || { echo "skipped: $et is not present"; exit 0; }
cargo build --release -q
mkdir -p "$out"

# The rules that load, in file order: all of them, and the first 1000.
"$bin" rules check "$et" > "$out/check.txt" || true
python3 - "$et" "$out" <<'EOF'
import glob, re, sys
et, out = sys.argv[1], sys.argv[2]
rejected = set()
for l in open(f"{out}/check.txt"):
    m = re.match(r"(.+?):(\d+):(\d+): ", l)
    if m:
        rejected.add((m.group(1), int(m.group(2))))
rules = []
for f in sorted(glob.glob(f"{et}/*.rules")):
    for i, l in enumerate(open(f, encoding="utf-8", errors="replace"), 1):
        t = l.strip()
        if t.startswith(("alert ", "drop ", "pass ", "reject ")) and (f, i) not in rejected:
            rules.append(t)
for name, subset in (("none", []), ("1k", rules[:1000]), ("all", rules)):
    open(f"{out}/{name}.rules", "w").write("".join(r + "\n" for r in subset))
    open(f"{out}/{name}.toml", "w").write(f'[rules]\nfiles = ["{name}.rules"]\n')
print(f"{len(rules)} loadable rules")
EOF

"$bin" gen-pcap --kind mixed --packets 300k -o "$out/mixed.pcap" 2>/dev/null
"$bin" gen-pcap --kind mixed --packets 1000 -o "$out/mixed-head.pcap" 2>/dev/null

# CPU seconds (user + system, to the microsecond) of one run.
cpu() {
  python3 -c '
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:])
_, status, ru = os.wait4(p.pid, 0)
if status != 0:
    sys.exit(f"exit status {status}: {sys.argv[1:]}")
print(f"{ru.ru_utime + ru.ru_stime:.6f}")' "$bin" read "$@" -o "$out/run" -q --workers 1
  rm -rf "$out/run"
}

# measure LABEL PACKETS "N-PACKET RUN FILES" "1000-PACKET RUN FILES"
measure() {
  local label=$1 packets=$2 full=$3 head=$4
  declare -A best
  for _ in $(seq "$rounds"); do
    for n in none 1k all; do
      for size in full head; do
        # shellcheck disable=SC2086 # file lists
        t=$(cpu ${!size} -c "$out/$n.toml")
        best[$n$size]=$(python3 -c "print(min(${best[$n$size]:-1e9}, $t))")
      done
    done
  done
  python3 -c "
p = $packets
full = {'none': ${best[nonefull]}, '1k': ${best[1kfull]}, 'all': ${best[allfull]}}
head = {'none': ${best[nonehead]}, '1k': ${best[1khead]}, 'all': ${best[allhead]}}
ns = {n: (full[n] - head[n]) / (p - 1000) * 1e9 for n in full}
print(f'$label: CPU ns/packet  0 rules {ns[\"none\"]:.0f}  1k {ns[\"1k\"]:.0f} ({ns[\"1k\"] / ns[\"none\"]:.2f}x)  all {ns[\"all\"]:.0f} ({ns[\"all\"] / ns[\"none\"]:.2f}x)')
print(f'$label: CPU s of the whole run  0 rules {full[\"none\"]:.2f}  1k {full[\"1k\"]:.2f} ({full[\"1k\"] / full[\"none\"]:.2f}x)  all {full[\"all\"]:.2f} ({full[\"all\"] / full[\"none\"]:.2f}x)')"
}

measure "mixed" 300000 "$out/mixed.pcap" "$out/mixed-head.pcap"
normal=../shared/pcaps/normal
if [ -d "$normal" ]; then
  files=("$normal"/*)
  five="${files[*]} ${files[*]} ${files[*]} ${files[*]} ${files[*]}"
  # The first 1000 packets of the first file.
  python3 - "${files[0]}" "$out/normal-head.pcap" <<'EOF2'
import struct, sys
data = open(sys.argv[1], "rb").read()
magic = data[:4]
if magic not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
    sys.exit(f"{sys.argv[1]}: not a classic pcap")
end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
at, n = 24, 0
while at + 16 <= len(data) and n < 1000:
    incl = struct.unpack(end + "I", data[at + 8:at + 12])[0]
    at += 16 + incl
    n += 1
open(sys.argv[2], "wb").write(data[:at])
EOF2
  # Packets in one pass: the last stats record's decoder count.
  count=$("$bin" read "${files[@]}" -o "$out/run" -q --workers 1 && python3 -c "
import json
stats = [json.loads(l) for l in open('$out/run/eve.json') if '\"event_type\":\"stats\"' in l]
print(stats[-1]['stats']['decoder']['pkts'] * 5)")
  rm -rf "$out/run"
  measure "normal/ x5" "$count" "$five" "$out/normal-head.pcap"
fi
# Loading alone (rules check of the same sets).
for n in 1k all; do
  t=$( { /usr/bin/time -f "%U %S" "$bin" rules check -q -c "$out/$n.toml" >/dev/null; } 2>&1 | tail -1 | awk '{print $1 + $2}')
  echo "load $n: CPU s $t"
done
