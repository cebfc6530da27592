#!/usr/bin/env bash
# CPU time of `backflow read` (one worker) with 0, 1000 and all loadable ET
# Open rules, on a generated mixed capture and, when present, on the public
# normal/ captures (five passes). Runs are interleaved and the best of each
# is kept, so other load on the machine hurts all three alike.
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

measure() {
  local label=$1; shift
  declare -A best
  for _ in $(seq "$rounds"); do
    for n in none 1k all; do
      t=$( { /usr/bin/time -f "%U %S" "$bin" read "$@" -c "$out/$n.toml" -o "$out/run-$n" -q --workers 1; } 2>&1 | tail -1 | awk '{print $1 + $2}')
      rm -rf "$out/run-$n"
      best[$n]=$(python3 -c "print(min(${best[$n]:-1e9}, $t))")
    done
  done
  python3 -c "
n, k, a = ${best[none]}, ${best[1k]}, ${best[all]}
print(f'$label: CPU s  0 rules {n:.2f}  1k {k:.2f} ({k / n:.2f}x)  all {a:.2f} ({a / n:.2f}x)')"
}

measure "mixed, 300k packets" "$out/mixed.pcap"
normal=../shared/pcaps/normal
if [ -d "$normal" ]; then
  files=("$normal"/*)
  measure "normal/ x5" "${files[@]}" "${files[@]}" "${files[@]}" "${files[@]}" "${files[@]}"
fi
# Loading alone (rules check of the same sets).
for n in 1k all; do
  t=$( { /usr/bin/time -f "%U %S" "$bin" rules check -q -c "$out/$n.toml" >/dev/null; } 2>&1 | tail -1 | awk '{print $1 + $2}')
  echo "load $n: CPU s $t"
done
