#!/usr/bin/env bash
# Run every test of tessera-mosaic on a fresh machine: installs what the tests need
# (scripts/setup.sh), builds in release mode, then runs the Rust tests and the Python tests
# that read our output with independent tools (pyproj, xarray, zarr-python).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo build --release --locked
cargo test --release --locked
# What the Rust tests left (shared fixtures live to the end of their process): gone before the
# Python tests start servers that need the disk.
rm -rf "${CARGO_TARGET_DIR:-target}/tmp"
MOSAIC_BIN="$(realpath "${CARGO_TARGET_DIR:-target}")/release/mosaic" .venv/bin/python -m pytest -q tests/python
