#!/usr/bin/env bash
# Install what building and testing tessera-mosaic needs on a fresh Debian machine:
# cmake (PROJ is built from source by the proj crate), a Python venv under .venv with the
# independent reference tools the tests use (pyproj, xarray, zarr-python, rioxarray,
# stac-validator, ...) and the STAC schemas for offline validation, Leaflet from npm
# (node_modules/, with the basemap and the fzstd zstd decoder: tests check that the copies built
# into `mosaic` are these packages; Azurite, the Azure Storage emulator of the az:// test) and
# Chromium for the map test.
# `scripts/setup.sh` installs what the demo needs (cmake, .venv); `scripts/setup.sh --tests`
# adds Chromium and Leaflet for the map tests, and Slurm and munge for the rehearsal. Idempotent: a second run only checks.
set -euo pipefail
for_tests=false
[ "${1:-}" = "--tests" ] && for_tests=true
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cmake >/dev/null 2>&1; then
  echo "setup: installing cmake (needed to build the bundled PROJ)"
  as_root apt-get install -y -q cmake >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q cmake >/dev/null; }
fi

apt_install() { # apt_install COMMAND PACKAGE...: install the packages unless COMMAND exists
  local cmd=$1
  shift
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "setup: installing $*"
    as_root apt-get install -y -q "$@" >/dev/null 2>&1 ||
      { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "$@" >/dev/null; }
  fi
}
if $for_tests; then
  apt_install chromium chromium
  # The Slurm rehearsal (tests/python/test_rehearsal.py, scripts/rehearse.sh).
  apt_install slurmctld slurmctld slurmd slurm-client munge
fi
apt_install npm nodejs npm

req=tests/python/requirements.txt
req_any_python=tests/python/requirements-ignore-python.txt
schemas=tests/python/schema-sources.txt
pins=tests/python/constraints.txt
stamp=.venv/.requirements.sha256
want=$(cat "$req" "$req_any_python" "$schemas" "$pins" | sha256sum | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with $(tr '\n' ' ' < "$req")"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -c "$pins" -r "$req"
  .venv/bin/pip install -q -c "$pins" --ignore-requires-python -r "$req_any_python"
  rm -rf .venv/stac-schemas-src
  .venv/bin/pip download -q --no-deps --no-binary :all: -d .venv/stac-schemas-src \
    $(grep -v '^#' "$schemas")
  echo "$want" > "$stamp"
fi

lock=package-lock.json
npm_stamp=node_modules/.package-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -f node_modules/leaflet/dist/leaflet.js ] || [ "$(cat "$npm_stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Leaflet, the basemap, fzstd and Azurite (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" > "$npm_stamp"
fi
