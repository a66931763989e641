"""TESSERA's global store as an input: a zone store in the published layout (tests/python/
zone_store.py, written with zarr-python: groups 31N, 32N, 31S with PCodec scales) built into
bands. Every pixel of a cell on the 31/32 zone boundary at the equator, its neighbour across the
boundary and the cell across the equator is checked against pyproj on the nominal group's grid
(the fixture read back by zarr-python); the overlapping groups hold different content there, so
a pixel from the wrong zone or hemisphere is a mismatch; a year not in `years_complete` is absent
although written; a build from s3:// (SeaweedFS) equals the local one."""

import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from pyproj import Transformer

from conftest import MOSAIC, REPO, mosaic
from seaweed import seaweed
from zone_store import group_grid, write_utm_store, write_zone_store

# Sea inside 32N's stored shards: NaN scales over its whole window, in both years.
SEA = (6.25, 0.05)
CELLS = [(5.95, 0.05), (6.05, 0.05), (5.95, -0.05), SEA]
GROUPS = {
    # 2017 written but not complete: must be absent from the output.
    "31N": {"complete": [2024], "written": [2017, 2024]},
    "32N": {"complete": [2017, 2024], "written": [2017, 2024]},
    "31S": {"complete": [2017, 2024], "written": [2024]},
}
BANDS = {"0-10": "N", "S10-0": "S"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("zone-store")
    root = d / "zones"
    write_zone_store(root, GROUPS, CELLS, sea=[SEA])
    out = d / "local.zarr"
    proc = mosaic("build", "--input", root, "--out", out, "--band", "0-10", "--band", "S10-0",
                  cwd=REPO)
    yield {"dir": d, "root": root, "out": out, "stdout": proc.stdout}
    shutil.rmtree(d, ignore_errors=True)


def nominal_group(lon_c, lat_c):
    zone = math.floor((lon_c + 180) / 6) + 1
    return f"{zone:02d}{'S' if lat_c < 0 else 'N'}"


def output_block(out, lon_c, lat_c, year):
    """The output pixels of a cell and year: (lons, lats, embeddings, scales)."""
    band = "0-10" if lat_c > 0 else "S10-0"
    g = zarr.open_group(out / band, mode="r")
    lat, lon, years = g["lat"][:], g["lon"][:], list(g["year"][:])
    rows = np.nonzero((lat > lat_c - 0.05) & (lat < lat_c + 0.05))[0]
    cols = np.nonzero((lon > lon_c - 0.05) & (lon < lon_c + 0.05))[0]
    t = years.index(year)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    assert r1 - r0 == len(rows) and c1 - c0 == len(cols)
    emb = g["embeddings"][t, r0:r1, c0:c1, :]
    sc = g["scales"][t, r0:r1, c0:c1]
    return lon[c0:c1], lat[r0:r1], emb, sc


def reference(root, group, lons, lats, year, counts=False):
    """What each output pixel should hold by pyproj on `group`'s grid (nearest pixel, read back
    by zarr-python): (embeddings, scales), fill 0 / NaN outside the data; with `counts`, also
    the source's `s2_obs_count` at that pixel (0, the source's fill, outside the data)."""
    epsg, west, north = group_grid(group)
    t = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    lo, la = np.meshgrid(lons, lats)
    e, n = t.transform(lo.ravel(), la.ravel())
    col = np.floor((np.asarray(e) - west) / 10).astype(np.int64)
    row = np.floor((north - np.asarray(n)) / 10).astype(np.int64)
    g = zarr.open_group(root / group, mode="r")
    years = [int(np.datetime64(int(d), "D").astype("datetime64[Y]").astype(int) + 1970)
             for d in g["time"][:]]
    ti = years.index(year)
    rows, cols = g["scales"].shape[1:]
    inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
    r0, r1 = row[inside].min(), row[inside].max() + 1
    c0, c1 = col[inside].min(), col[inside].max() + 1
    emb_region = g["embeddings"][ti, r0:r1, c0:c1, :]
    sc_region = g["scales"][ti, r0:r1, c0:c1]
    emb = np.zeros((len(e), 128), np.int8)
    sc = np.full(len(e), np.nan, np.float32)
    emb[inside] = emb_region[row[inside] - r0, col[inside] - c0]
    sc[inside] = sc_region[row[inside] - r0, col[inside] - c0]
    emb[np.isnan(sc)] = 0
    shape = (len(lats), len(lons))
    if counts:
        cnt = np.zeros(len(e), np.uint16)
        cnt[inside] = g["s2_obs_count"][ti, r0:r1, c0:c1][row[inside] - r0, col[inside] - c0]
        return emb.reshape(*shape, 128), sc.reshape(shape), cnt.reshape(shape)
    return emb.reshape(*shape, 128), sc.reshape(shape)


def mismatches(emb, sc, ref_emb, ref_sc):
    same_scale = (sc.view(np.uint32) == ref_sc.view(np.uint32)) | (np.isnan(sc) & np.isnan(ref_sc))
    same = same_scale & (emb == ref_emb).all(axis=-1)
    return int((~same).sum())


def test_the_fixture_is_in_the_published_layout(built):
    g = zarr.open_group(built["root"] / "31N", mode="r")
    assert g["embeddings"].metadata.dimension_names == ("time", "northing", "easting", "band")
    codecs = g["scales"].metadata.to_dict()["codecs"][0]["configuration"]["codecs"]
    assert [c["name"] for c in codecs] == ["numcodecs.pcodec"]
    assert g.attrs["proj:code"] == "EPSG:32631" and g.attrs["years_complete"] == [2024]


@pytest.mark.parametrize("cell, year, others", [
    # On the zone boundary (6E) and the equator: 32N and 31S overlap it with other content.
    ((5.95, 0.05), 2024, ["32N", "31S"]),
    # Across the boundary: 31N overlaps it.
    ((6.05, 0.05), 2017, ["31N"]),
    ((6.05, 0.05), 2024, ["31N"]),
    # Across the equator: 31N's grid ends at the equator; nothing else holds it.
    ((5.95, -0.05), 2024, []),
])
def test_every_pixel_comes_from_the_nominal_group_by_pyproj(built, cell, year, others):
    lons, lats, emb, sc = output_block(built["out"], *cell, year)
    ref_emb, ref_sc = reference(built["root"], nominal_group(*cell), lons, lats, year)
    assert mismatches(emb, sc, ref_emb, ref_sc) == 0
    # Nearly every pixel holds data (about 1% of the fixture's pixels are not embedded).
    assert np.isfinite(sc).mean() > 0.97, np.isfinite(sc).mean()
    for other in others:
        if year not in GROUPS[other]["written"]:
            continue
        o_emb, o_sc = reference(built["root"], other, lons, lats, year)
        held = np.isfinite(o_sc)
        # The other group holds this ground too, with other values: taking it would be seen.
        assert held.sum() > 10_000, (other, held.sum())
        assert mismatches(emb[held], sc[held], o_emb[held], o_sc[held]) > 0.99 * held.sum()


COUNTS_FILL = 65535


@pytest.mark.parametrize("cell, year", [
    ((5.95, 0.05), 2024), ((6.05, 0.05), 2017), ((6.05, 0.05), 2024), ((5.95, -0.05), 2024),
])
def test_observation_counts_travel_with_each_pixel(built, cell, year):
    # Read as a user would, with xarray: s2_obs_count beside scales, (year, lat, lon), uint16.
    band = "0-10" if cell[1] > 0 else "S10-0"
    # chunks=None: no dask graph over the whole band (millions of inner chunks).
    ds = xr.open_zarr(built["out"], group=band, chunks=None)
    counts = ds["s2_obs_count"]
    assert counts.dtype == np.uint16 and counts.dims == ("year", "lat", "lon")
    assert counts.attrs["grid_mapping"] == "spatial_ref"
    z = zarr.open_group(built["out"] / band, mode="r")
    # Sharded and chunked as scales: one shard per cell and year.
    assert (z["s2_obs_count"].shards, z["s2_obs_count"].chunks) == (z["scales"].shards,
                                                                 z["scales"].chunks)
    meta = z["s2_obs_count"].metadata
    assert meta.fill_value == COUNTS_FILL
    assert {c["uuid"] for c in meta.attributes["zarr_conventions"]} == {
        c["uuid"] for c in ds["scales"].attrs["zarr_conventions"]}
    block = ds.sel(year=year, lat=slice(cell[1] - 0.05, cell[1] + 0.05),
                   lon=slice(cell[0] - 0.05, cell[0] + 0.05))
    got, sc = block["s2_obs_count"].values, block["scales"].values
    _, ref_sc, ref_counts = reference(built["root"], nominal_group(*cell), block.lon.values,
                                      block.lat.values, year, counts=True)
    assert got.shape == ref_sc.shape and got.size > 1_000_000
    # Every pixel: the count of the pixel pyproj assigns, or the fill where there is no data
    # (the fixture holds a count of 3 under its NaN scales: not copied).
    expected = np.where(np.isfinite(ref_sc), ref_counts, COUNTS_FILL)
    assert int((got != expected).sum()) == 0
    assert ((got == COUNTS_FILL) == np.isnan(sc)).all() and np.isnan(sc).sum() > 1000
    assert len(np.unique(got[np.isfinite(sc)])) == 40


def test_verify_checks_the_observation_counts(built, tmp_path):
    # One count changed in a copy of the output: verify (every pixel) finds exactly it.
    out = tmp_path / "changed.zarr"
    shutil.copytree(built["out"], out)
    g = zarr.open_group(out / "0-10", mode="r+")
    lat, lon, years = g["lat"][:], g["lon"][:], list(g["year"][:])
    r = int(np.searchsorted(lat, 0.05))
    c = int(np.searchsorted(lon, 6.05))
    t = years.index(2024)
    old = int(g["s2_obs_count"][t, r, c])
    assert old != COUNTS_FILL
    g["s2_obs_count"][t, r, c] = old + 1
    proc = mosaic("verify", "--input", built["root"], "--store", out, "--band", "0-10",
                  "--years", "2024", "--full", check=False)
    assert proc.returncode != 0, proc.stdout
    assert " 1 mismatches" in proc.stdout, proc.stdout
    assert f"expected s2_obs_count {old}, found {old + 1}" in proc.stdout, proc.stdout


def test_a_year_not_in_years_complete_is_absent(built):
    # 31N's 2017 is written (it reads back with data) but not listed as complete.
    g = zarr.open_group(built["root"] / "31N", mode="r")
    assert np.isfinite(g["scales"][0, 933_000:933_100, 66_000:66_100]).any()
    lons, lats, emb, sc = output_block(built["out"], 5.95, 0.05, 2017)
    assert np.isnan(sc).all() and (emb == 0).all()
    # No shard of that cell and year was written (one shard = one cell x one year; year index
    # 0 is 2017, shard row 0 the band's southern cell row, column the cell's lon index), while
    # 32N's cell of 2017 was.
    written = built["out"] / "0-10" / "scales" / "c" / "0" / "0"
    assert not (written / "1859").exists() and (written / "1860").exists()
    lons, lats, emb, sc = output_block(built["out"], 6.05, 0.05, 2017)
    assert np.isfinite(sc).mean() > 0.97


def test_a_cell_of_sea_inside_a_stored_shard_is_no_data_not_a_failure(built):
    # The source: 32N's shards hold the sea cell's ground, all of it NaN scales (embeddings
    # written), in both years.
    epsg, west, north = group_grid("32N")
    t = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
    e, n = t.transform([SEA[0] - 0.05, SEA[0] + 0.05], [SEA[1] - 0.05, SEA[1] + 0.05])
    c0, c1 = int((e[0] - west) // 10), int((e[1] - west) // 10)
    r0, r1 = int((north - n[1]) // 10), int((north - n[0]) // 10)
    g = zarr.open_group(built["root"] / "32N", mode="r")
    assert np.isnan(g["scales"][:, r0:r1, c0:c1]).all()
    assert (g["embeddings"][1, r0:r0 + 8, c0:c0 + 8, :] != 0).any()
    # The build exited 0 (the fixture checks) with no failed tile and says what it skipped.
    line = next(l for l in built["stdout"].splitlines() if l.startswith("band 0-10:"))
    assert " 0 failed" in line and " 2 without data" in line, built["stdout"]
    for year in (2017, 2024):
        lons, lats, emb, sc = output_block(built["out"], *SEA, year)
        assert np.isnan(sc).all() and (emb == 0).all(), year
        # Its neighbour across the boundary is unchanged: every pixel by pyproj.
        lons, lats, emb, sc = output_block(built["out"], 6.05, 0.05, year)
        ref_emb, ref_sc = reference(built["root"], "32N", lons, lats, year)
        assert mismatches(emb, sc, ref_emb, ref_sc) == 0
        assert np.isfinite(sc).mean() > 0.97
    # No shard written for it (shard column = lon index, 1862; 6.05's is 1860).
    scales = built["out"] / "0-10" / "scales" / "c"
    years = list(zarr.open_group(built["out"] / "0-10", mode="r")["year"][:])
    for year in (2017, 2024):
        t = str(years.index(year))
        assert not (scales / t / "0" / "1862").exists(), year
        assert (scales / t / "0" / "1860").exists(), year
    # Not a failure for `status` either, nor missing.
    status = mosaic("status", "--store", built["out"], "--input", built["root"]).stdout
    for line in status.splitlines():
        if line.startswith(("0-10", "S10-0")):
            assert line.split()[3:5] == ["0", "0"], status


def test_a_build_from_s3_equals_the_local_build(built, tmp_path):
    with seaweed(tmp_path / "seaweed") as s3:
        fs = s3["fs"]
        root = built["root"]
        for path in sorted(root.rglob("*")):
            if path.is_file():
                fs.put_file(str(path), f"mosaic/zones/{path.relative_to(root)}")
        out = tmp_path / "from-s3.zarr"
        env = dict(os.environ, **s3["env"])
        proc = mosaic("build", "--input", "s3://mosaic/zones", "--out", out, "--band", "0-10",
                      "--band", "S10-0", env=env, cwd=REPO)
    assert "fetched" in proc.stdout, proc.stdout

    def shards(store):
        return {str(p.relative_to(store)): p.read_bytes() for p in Path(store).rglob("*")
                if p.is_file() and "/c/" in str(p.relative_to(store))}
    local = shards(built["out"])
    assert len(local) > 10
    assert shards(out) == local


def amplification(stdout):
    """The read amplification the build prints per band: fetched / distinct bytes."""
    ratios = [float(line.split("(")[1].split(" x)")[0]) for line in stdout.splitlines()
              if "of it distinct" in line]
    assert len(ratios) == 2, stdout
    return ratios


def test_each_source_chunk_is_fetched_once_through_the_cache(built, tmp_path):
    # Neighbouring cells' windows share the chunks along their edges: with the cache each is
    # fetched once (the ratio counts every (object, byte range) fetched against the distinct
    # ones); without it, the shared edges are fetched again, and the output is the same.
    assert all(r <= 1.01 for r in amplification(built["stdout"])), built["stdout"]
    out = tmp_path / "no-cache.zarr"
    proc = mosaic("build", "--input", built["root"], "--out", out, "--band", "0-10", "--band",
                  "S10-0", "--zone-cache-mb", "0", cwd=REPO)
    assert all(r > 1.05 for r in amplification(proc.stdout)), proc.stdout
    for f in Path(built["out"]).rglob("*"):
        if f.is_file() and "/c/" in str(f):
            assert (out / f.relative_to(built["out"])).read_bytes() == f.read_bytes()


def test_verify_and_status_read_the_zone_store(built):
    for band in BANDS:
        out = mosaic("verify", "--input", built["root"], "--store", built["out"], "--band", band,
                     "--sample", "2000").stdout
        assert "OK: the band matches its input" in out, out
        assert " 0 mismatches" in out, out
        # The sea cell of both years: checked all NaN in the source, not missing.
        assert f" {2 if band == '0-10' else 0} without data" in out, out
    status = mosaic("status", "--store", built["out"], "--input", built["root"]).stdout
    # Built, failed, missing per band and year: 31N's 2017 is not missing (it is not an input);
    # the sea cell is neither built nor missing (32N's region reaching it adds 3 cells with data).
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in status.splitlines()
            if line.startswith(("0-10", "S10-0"))}
    assert rows[("0-10", "2017")] == ["7", "0", "0"], status
    assert rows[("0-10", "2024")] == ["11", "0", "0"], status


# -- The plain copy on Source Coop (groups utm01..utm60 spanning both hemispheres, EPSG:326ZZ,
# (time, band, y, x)), written by tests/python/zone_store.py from the same content.


@pytest.fixture(scope="module")
def utm(built):
    root = built["dir"] / "utm"
    grids = write_utm_store(root, GROUPS, CELLS, sea=[SEA])
    out = built["dir"] / "utm.zarr"
    proc = mosaic("build", "--input", root, "--out", out, "--band", "0-10", "--band", "S10-0",
                  cwd=REPO)
    return {"root": root, "out": out, "grids": grids, "stdout": proc.stdout}


def utm_reference(root, group, lons, lats, year):
    """Each output pixel by pyproj on a utm group's grid, in the CRS its proj:code names (the
    grid from its x/y coordinates read back by zarr-python): (embeddings, scales, counts)."""
    g = zarr.open_group(root / group, mode="r")
    west, north = g["x"][0] - 5, g["y"][0] + 5
    t = Transformer.from_crs("EPSG:4326", g.attrs["proj:code"], always_xy=True)
    lo, la = np.meshgrid(lons, lats)
    e, n = t.transform(lo.ravel(), la.ravel())
    col = np.floor((np.asarray(e) - west) / 10).astype(np.int64)
    row = np.floor((north - np.asarray(n)) / 10).astype(np.int64)
    ti = list(g["time"][:]).index(year)
    rows, cols = g["scales"].shape[1:]
    inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
    r0, r1 = row[inside].min(), row[inside].max() + 1
    c0, c1 = col[inside].min(), col[inside].max() + 1
    emb = np.zeros((len(e), 128), np.int8)
    sc = np.full(len(e), np.nan, np.float32)
    cnt = np.zeros(len(e), np.uint16)
    at = (row[inside] - r0, col[inside] - c0)
    emb[inside] = g["embeddings"][ti, :, r0:r1, c0:c1].transpose(1, 2, 0)[at]
    sc[inside] = g["scales"][ti, r0:r1, c0:c1][at]
    cnt[inside] = g["s2_obs_count"][ti, r0:r1, c0:c1][at]
    emb[np.isnan(sc)] = 0
    cnt = np.where(np.isnan(sc), COUNTS_FILL, cnt)
    shape = (len(lats), len(lons))
    return emb.reshape(*shape, 128), sc.reshape(shape), cnt.reshape(shape)


def test_the_utm_fixture_is_in_the_transcoders_layout(utm):
    g = zarr.open_group(utm["root"] / "utm31", mode="r")
    assert g["embeddings"].metadata.dimension_names == ("time", "band", "y", "x")
    assert g.attrs["proj:code"] == "EPSG:32631"
    assert g["y"][-1] < -8_000_000 and g["y"][0] > 9_000_000  # both hemispheres, one grid
    assert g.attrs["geotessera:source_groups"]["31N"]["years_complete"] == [2024]
    assert g.attrs["geotessera:source_groups"]["31S"]["years_complete"] == [2017, 2024]
    assert list(g["time"][:]) == [2017, 2024]


@pytest.mark.parametrize("cell, year, other", [
    # On the zone boundary at the equator; utm32 holds the same ground with other content.
    ((5.95, 0.05), 2024, "utm32"),
    ((6.05, 0.05), 2024, "utm31"),
    # South of the equator: negative northings in the group's EPSG:32631.
    ((5.95, -0.05), 2024, None),
])
def test_utm_layout_every_pixel_by_pyproj(utm, cell, year, other):
    lons, lats, emb, sc = output_block(utm["out"], *cell, year)
    group = f"utm{math.floor((cell[0] + 180) / 6) + 1:02d}"
    ref_emb, ref_sc, ref_cnt = utm_reference(utm["root"], group, lons, lats, year)
    assert mismatches(emb, sc, ref_emb, ref_sc) == 0
    assert np.isfinite(sc).mean() > 0.97
    band = "0-10" if cell[1] > 0 else "S10-0"
    ds = xr.open_zarr(utm["out"], group=band, chunks=None)
    got = ds["s2_obs_count"].sel(year=year, lat=slice(lats[0], lats[-1]),
                                 lon=slice(lons[0], lons[-1])).values
    assert int((got != ref_cnt).sum()) == 0
    if other:
        o_emb, o_sc, _ = utm_reference(utm["root"], other, lons, lats, year)
        held = np.isfinite(o_sc)
        assert held.sum() > 10_000
        assert mismatches(emb[held], sc[held], o_emb[held], o_sc[held]) > 0.99 * held.sum()


def test_utm_layout_builds_the_same_store_as_the_hemisphere_layout(built, utm):
    # The same content at the same ground: every shard of every (year, cell) (embeddings,
    # scales, counts, overviews, statistics) equal byte for byte, so the years not complete in a
    # hemisphere, the sea cell and the cells on the equator come out as from the Icechunk
    # layout. Keyed by year, not year index: the merged group's 2017 shards on the equator hold
    # 31N's rows, so the utm build also catalogues (and skips as no data) 31S's 2017 cells, and
    # its S10-0 year axis starts in 2017.
    def shards(store):
        years = {b: list(zarr.open_group(store / b, mode="r")["year"][:]) for b in BANDS}
        out = {}
        for p in Path(store).rglob("*"):
            k = str(p.relative_to(store))
            if not p.is_file() or "/c/" not in k or k.split("/c/")[0].endswith("/year"):
                continue
            prefix, idx = k.split("/c/")
            if prefix.split("/")[-1] in ("embeddings", "scales", "s2_obs_count", "sums", "sample"):
                t, *rest = idx.split("/")
                idx = "/".join([str(years[k.split("/")[0]][int(t)]), *rest])
            out[f"{prefix}/c/{idx}"] = p.read_bytes()
        return out
    local, other = shards(built["out"]), shards(utm["out"])
    assert len(local) > 30 and any("s2_obs_count" in k for k in local)
    assert sorted(other) == sorted(local)
    assert [k for k in local if other[k] != local[k]] == []


def test_verify_reads_the_utm_layout(utm):
    for band in BANDS:
        out = mosaic("verify", "--input", utm["root"], "--store", utm["out"], "--band", band,
                     "--sample", "2000").stdout
        assert "OK: the band matches its input" in out and " 0 mismatches" in out, out
        # 31S's 2017 cells: windows reaching 31N's 2017 rows, but no data in the cell.
        assert " 2 without data" in out, out
