#!/usr/bin/env bash
# Install what building and testing tessera-mosaic needs on a fresh Debian machine:
# cmake (PROJ is built from source by the proj crate) and a Python venv under .venv with the
# independent reference tools the tests use (pyproj, xarray, zarr-python, rioxarray, ...).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v cmake >/dev/null 2>&1; then
  echo "setup: installing cmake (needed to build the bundled PROJ)"
  as_root apt-get install -y -q cmake >/dev/null 2>&1 ||
    { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q cmake >/dev/null; }
fi

req=tests/python/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv with $(tr '\n' ' ' < "$req")"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -r "$req"
  echo "$want" > "$stamp"
fi
