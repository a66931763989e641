#!/usr/bin/env bash
# A year's run rehearsed under Slurm on this machine, with faults (scripts/rehearse.py says what
# and what is checked). Starts munged, slurmctld and slurmd on localhost (as root, no systemd),
# SeaweedFS and a fault-injecting proxy; stops them all at the end.
#
#   scripts/rehearse.sh --work /tmp/rehearsal                    # the small version (4 tiles)
#   scripts/rehearse.sh --work /tmp/rehearsal --bbox 10.0,69.6,10.8,70.4 --kills 3 --requeues 2 --hard 2
#
# Needs: root, target/release/mosaic (or MOSAIC_BIN), .venv (scripts/setup.sh --tests), and
# Debian's slurmctld, slurmd, slurm-client and munge (installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "rehearse: run as root (it starts munged, slurmctld and slurmd)" >&2
  exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
  ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "rehearse: installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null ||
    { apt-get update -q >/dev/null &&
      apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
fi
exec .venv/bin/python scripts/rehearse.py "$@"
