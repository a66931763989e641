#!/usr/bin/env bash
# Codec comparison for the embeddings shards: for each candidate codec and level, compress the
# exact output bytes of a build (the gathered shards of real-size synth tiles, one thread) and
# decode them again; print size and speeds. The numbers behind the default in bands.toml
# (see docs/performance.md).
#
# Usage: scripts/codecs.sh [WORK_DIR] [TILES_PER_BAND]   (defaults: bench-out/, 12)
# Uses WORK_DIR/in-70-80 and WORK_DIR/in-0-10 from scripts/bench.sh, synthesising them if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench-out}
per_band=${2:-12}
command -v cmake >/dev/null 2>&1 || scripts/setup.sh
cargo build --release --locked --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release/mosaic
mkdir -p "$work"

codecs=(
  'codec = "none"'
  'codec = "zstd"
level = 1'
  'codec = "zstd"
level = 2'
  'codec = "zstd"
level = 3'
  'codec = "blosc"
cname = "zstd"
clevel = 1
shuffle = "bitshuffle"'
  'codec = "blosc"
cname = "zstd"
clevel = 3
shuffle = "bitshuffle"'
  'codec = "blosc"
cname = "zstd"
clevel = 5
shuffle = "bitshuffle"'
  'codec = "blosc"
cname = "lz4"
clevel = 5
shuffle = "bitshuffle"'
  'codec = "blosc"
cname = "lz4"
clevel = 5
shuffle = "noshuffle"'
)

bbox_for() { case "$1" in 70-80) echo "10.0,70.0,11.0,70.4";; 0-10) echo "10.0,0.0,10.7,0.2";; esac; }

printf "%-6s %-50s %9s %14s %14s\n" band codec stored/in "compress MB/s" "decode MB/s"
for band in 70-80 0-10; do
  input="$work/in-$band"
  [ -d "$input" ] || "$bin" synth --out "$input" --bbox "$(bbox_for "$band")" --years 2024 --land-fraction 1 --seed 3 >/dev/null
  # A subset of the band's tiles, linked, so that the comparison takes minutes.
  subset="$work/codecs-$band"
  rm -rf "$subset"; mkdir -p "$subset/2024"
  for d in $(ls "$input/2024" | head -n "$per_band"); do ln -s "$(realpath "$input/2024/$d")" "$subset/2024/$d"; done
  for c in "${codecs[@]}"; do
    cfg="$work/codec.toml"
    # bands.toml with its [compression] section replaced by the candidate.
    awk -v repl="$c" '/^\[compression\]/{print; print repl; skip=1; next} /^\[/{skip=0} !skip' bands.toml > "$cfg"
    "$bin" ceiling --input "$subset" --band "$band" --bands "$cfg" --threads 1 --json | python3 -c '
import json, sys
c = json.loads(sys.stdin.read())
name = " ".join(f"{k}={v}" for k, v in c["compression"].items())
print(f"%-6s %-50s %9.3f %14.1f %14.1f" % (sys.argv[1], name, c["stored_bytes"] / c["input_bytes"],
      c["output_bytes"] / 1e6 / c["compress_seconds"], c["decode_mb_per_s"]))' "$band"
  done
  rm -rf "$subset" "$work/codec.toml"
done
echo "speeds are output (shard) MB per second of one thread; machine: $(nproc) cores, $(uname -r)"
