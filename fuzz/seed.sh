#!/bin/sh
# Builds the seed corpora in fuzz/corpus/<target>/ (never committed: they
# hold data from ../shared) from pcaps/ and, when present, ../shared/pcaps/,
# and the config seeds from the example and test configs.
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
for t in capture decode packet_path config; do
    echo "$t: $(ls "$corpus/$t" | wc -l) seeds"
done
