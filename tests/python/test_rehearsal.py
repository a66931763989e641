"""The year's run rehearsed, small: scripts/rehearse.sh runs 16 shares of two bands (4 synthetic
tiles) as a Slurm job array on localhost (munged, slurmctld, slurmd started by the script) into
SeaweedFS through a fault-injecting proxy, then finalize as an array of 4 shares, the final
finalize, the map's tiles as an array of 3 shares and stac as dependent jobs, with one
task's mosaic killed (SIGKILL) and one task requeued by Slurm while they run, and one tile whose
reads all fail in its share's first attempt. The script checks the outcome against a
single-process build (every store object and catalogue file byte for byte, the failure named in
a record, each killed task requeued and completed); this test checks its summary and that the
checks it reports are the ones made. Needs root and Debian's Slurm packages (setup.sh --tests)."""

import json
import os
import subprocess

from conftest import MOSAIC, REPO


def test_a_slurm_array_with_faults_builds_what_one_process_builds(tmp_path):
    summary = tmp_path / "summary.json"
    cmd = [str(REPO / "scripts" / "rehearse.sh"), "--work", str(tmp_path / "run"),
           "--fault-rate", "0.05", "--summary", str(summary)]
    if os.geteuid() != 0:
        cmd = ["sudo", "-n", "-E", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500,
                          env=dict(os.environ, MOSAIC_BIN=str(MOSAIC)))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    s = json.loads(summary.read_text())
    assert s["problems"] == []
    # Faults of every kind happened, and each planned one.
    assert set(s["faults_injected"]) == {"500", "reset-before", "reset-after", "stall"}, s
    assert sorted(k["how"] for k in s["kills"]) == ["SIGKILL", "requeue"]
    for k in s["kills"]:
        assert s["restarts"].get(str(k["task"]), 0) >= 1, s
    # The tile whose reads all failed is named in a record, with the server's answer.
    named = [f for f in s["failures_recorded"] if s["hard_tiles"][0] + ".npy" in f["path"]]
    assert named and "500" in named[0]["reason"], s["failures_recorded"]
    # What was compared: a whole store with statistics and a basis, and a catalogue with a map
    # (292 store objects for the 4 tiles: shards, overview levels, statistics, metadata and one
    # object per coordinate array).
    assert s["store_objects"] > 250 and s["statistics_objects"] > 0, s
    assert s["colour_bases"] == ["_mosaic/colour/2024.json"]
    # The finalize shares' partials (one per band, year and block of 64 x 64 cells) are part of
    # the store compared: the final step after 4 shares left the single finalize's bytes.
    assert s["finalize_partials"] >= 2, s
    assert s["finalize_shares_s"] > 0, s
    assert s["catalogue_files"] > 40
    # The map's tiles were drawn by the stac shares; the plain stac after them drew none, and
    # the catalogue and map still equal the single-process run's (problems above).
    assert s["stac_shares_s"] > 0 and s["stac_tiles_rendered_after_shares"][-1] == 0, s
    assert (tmp_path / "run" / "stac-run" / "catalog.json").is_file()
