"""Shared fixtures: the mosaic binary, one synthetic input built into a store once, and
scratch folders that a passing test removes (the suite writes gigabytes; kept to the end, they
starve the SeaweedFS servers later tests start)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOSAIC = Path(os.environ.get("MOSAIC_BIN", REPO / "target" / "release" / "mosaic"))

# Tiles covering both hemispheres, a UTM zone boundary (6E north; 66W south) and both sides of
# the antimeridian. 2023 has all of them; 2024 only the northern ones.
NORTH = ["grid_5.95_70.05", "grid_6.05_70.05", "grid_179.95_70.05", "grid_-179.95_70.15"]
SOUTH = ["grid_-66.05_-64.95", "grid_-65.95_-64.95", "grid_179.95_-64.95", "grid_-179.95_-64.85"]
# South of NORTH[0], across the 70-degree band edge.
EDGE = ["grid_5.95_69.95"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember on the test whether any of its phases failed, for `tmp_path` below, and add the
    tail of the SeaweedFS log to the report of a failing test that used a server."""
    report = yield
    if report.failed:
        item.mosaic_failed = True
        for value in getattr(item, "funcargs", {}).values():
            log = value.get("log") if isinstance(value, dict) else None
            if isinstance(log, Path) and log.name == "weed.log" and log.exists():
                report.sections.append(("SeaweedFS log (tail)", log.read_text()[-4000:]))
    return report


@pytest.fixture
def tmp_path(tmp_path, request):
    """pytest's `tmp_path`, removed after the test passes (kept when it fails)."""
    yield tmp_path
    if not getattr(request.node, "mosaic_failed", False):
        shutil.rmtree(tmp_path, ignore_errors=True)


def mosaic(*args, check=True, **kw):
    """Run the mosaic binary, returning the CompletedProcess."""
    proc = subprocess.run([str(MOSAIC), *map(str, args)], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"mosaic {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """A synthetic TESSERA tree and a store with bands 70-80 and S70-S60 built from it."""
    d = tmp_path_factory.mktemp("sample")
    root = d / "tessera"
    mosaic("synth", "--out", root, "--tiles", ",".join(NORTH + SOUTH + EDGE), "--years", "2023,2024",
           "--landmasks", "--land-fraction", "0.8", "--seed", "11")
    for name in SOUTH:
        shutil.rmtree(root / "2024" / name)
    store = d / "store.zarr"
    mosaic("build", "--input", root, "--out", store, "--band", "70-80,S70-S60,60-70", cwd=REPO)
    return {"root": root, "store": store, "landmasks": root / "global_0.1_degree_tiff_all"}


def picture_level(store, band, bbox, shape):
    """The overview level of `band` a picture of `bbox` (W, S, E, N) drawn `shape` (rows,
    columns) reads, by the documented rule (docs/overviews.md, "Pictures"): the coarsest level
    whose pixels are no larger than the picture's, else the finest. Pixel sizes from each
    level's `spatial:transform` in the store's multiscales layout, not from the tool."""
    import zarr

    layout = zarr.open_group(store, mode="r")[f"{band}/overviews"].attrs["multiscales"]["layout"]
    west, south, east, north = bbox
    dlon = ((east - west) % 360 or 360) / shape[1]
    dlat = (north - south) / shape[0]
    fits = [int(e["asset"]) for e in layout
            if e["spatial:transform"][0] <= dlon * 1.0001 and -e["spatial:transform"][4] <= dlat * 1.0001]
    return max(fits) if fits else int(layout[0]["asset"])
