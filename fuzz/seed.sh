#!/bin/sh
# Builds the seed corpora in fuzz/corpus/<target>/ (never committed: they
# hold data from ../shared) from pcaps/ and, when present, ../shared/pcaps/
# and ../shared/rules/; the config seeds from the example and test configs.
set -eu
fuzz=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$fuzz")
corpus="$fuzz/corpus"
inputs="$repo/pcaps"
if [ -d "$repo/../shared/pcaps" ]; then
    inputs="$inputs $repo/../shared/pcaps"
else
    echo "seed.sh: ../shared/pcaps not found; seeding from pcaps/ only" >&2
fi
# The seed builder uses backflow's reader; built without instrumentation.
(cd "$fuzz" && cargo run --quiet --release --example seed -- "$corpus" $inputs)
mkdir -p "$corpus/config"
for f in "$repo/backflow.example.toml" "$repo"/tests/data/*.toml "$repo"/pcaps/*/*.toml; do
    [ -f "$f" ] && cp "$f" "$corpus/config/$(basename "$(dirname "$f")")-$(basename "$f")"
done
# Rules: backflow's rule files whole, and every 20th rule of ET Open alone.
mkdir -p "$corpus/rules"
for f in "$repo"/rules/*.rules; do
    [ -f "$f" ] && cp "$f" "$corpus/rules/$(basename "$f")"
done
if [ -d "$repo/../shared/rules/et-open" ]; then
    cat "$repo"/../shared/rules/et-open/*.rules | grep -E '^(alert|drop|pass|reject)' |
        awk 'NR % 20 == 1' | while IFS= read -r rule; do
            printf '%s\n' "$rule" > "$corpus/rules/et-$(printf '%s' "$rule" | cksum | cut -d' ' -f1)"
        done
fi
for t in capture decode packet_path config rules; do
    echo "$t: $(ls "$corpus/$t" | wc -l) seeds"
done
