"""A small zone store in the layout of TESSERA's global store (dClimate/tessera-embeddings
docs/global-store.md, storage/zone_grid.py, config/store_layout.py), written with zarr-python from
synthetic content, as a plain Zarr v3 hierarchy.

As published: one group per UTM zone and hemisphere (`31N`, `31S`), each with the zone's whole
shard-aligned extent (easting 163 840..839 680 m; northing 0..9 338 880 m north, 1 105 920..
10 014 720 m south) as 1-D pixel-centre coordinates `easting` (ascending) and `northing`
(descending), a CF `time` axis, `embeddings` (time, northing, easting, band) int8 sharded with
zstd, `scales` (time, northing, easting) float32 through the PCodec serializer with NaN where not
embedded, `s2_obs_count` uint16, and the group attributes `proj:code`, `spatial:*` and
`years_complete`. Smaller chunks than the published 256 x 256 in 2048 x 2048 shards keep the
fixture small; readers take the chunking from the metadata.

Each group holds data over every listed cell whose footprint it reaches, so neighbouring groups
overlap (as the published ones do, up to a shard) with DIFFERENT content: a reader that takes a
pixel from the wrong zone or hemisphere gets other values.
"""

import math
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs.numcodecs import PCodec
from pyproj import Transformer

PIXEL = 10.0
EASTING = (163_840.0, 839_680.0)
NORTHING = {"N": (0.0, 9_338_880.0), "S": (1_105_920.0, 10_014_720.0)}
YEARS = [2017, 2024]
CHUNK, SHARD = 64, 256
BANDS = 128


def epsg_of(group):
    return (32600 if group[-1] == "N" else 32700) + int(group[:2])


def grid(group):
    """(west edge, north edge, rows, cols) of a group's grid."""
    lo, hi = NORTHING[group[-1]]
    return EASTING[0], hi, round((hi - lo) / PIXEL), round((EASTING[1] - EASTING[0]) / PIXEL)


def footprint(group, lon_c, lat_c, margin=8):
    """Rows and columns of a group's grid under a 0.1-degree cell, with a margin, clipped."""
    t = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg_of(group)}", always_xy=True)
    lons = np.linspace(lon_c - 0.05, lon_c + 0.05, 21)
    lats = np.linspace(lat_c - 0.05, lat_c + 0.05, 21)
    lo, la = np.meshgrid(lons, lats)
    e, n = t.transform(lo.ravel(), la.ravel())
    west, north, rows, cols = grid(group)
    c0 = max(0, math.floor((min(e) - west) / PIXEL) - margin)
    c1 = min(cols, math.ceil((max(e) - west) / PIXEL) + margin)
    r0 = max(0, math.floor((north - max(n)) / PIXEL) - margin)
    r1 = min(rows, math.ceil((north - min(n)) / PIXEL) + margin)
    return r0, r1, c0, c1


def content(group, year, r0, r1, c0, c1):
    """Synthetic embeddings, scales and counts of rows r0..r1, columns c0..c1 of a group-year:
    each pixel's vector encodes its row, column, group and year; about 1% of pixels are not
    embedded (NaN scale)."""
    g = int(group[:2]) * 2 + (group[-1] == "S")
    r = np.arange(r0, r1, dtype=np.int64)[:, None]
    c = np.arange(c0, c1, dtype=np.int64)[None, :]
    base = ((r * 3 + c * 5 + g * 11 + year) % 251).astype(np.int16)
    b = (np.arange(BANDS, dtype=np.int16) * 7)[None, None, :]
    emb = ((base[:, :, None] + b) % 251 - 125).astype(np.int8)
    emb[..., 0] = (r % 256 - 128).astype(np.int8)
    emb[..., 1] = (c % 256 - 128).astype(np.int8)
    emb[..., 2] = g
    scales = (1e-3 + ((r * 1009 + c * 917 + g * 13 + year) % 997) * 1e-6).astype(np.float32)
    scales[(r * 7 + c * 3 + g) % 97 == 0] = np.nan
    counts = ((r + c + g + year) % 40 + 15).astype(np.uint16)
    counts[np.isnan(scales)] = 3
    return emb, scales, counts


def written_region(name, cells, shard=SHARD):
    """The rows and columns of a group written with data: the union of the cells' footprints,
    aligned outward to shards."""
    _, _, rows, cols = grid(name)
    boxes = [footprint(name, *cell) for cell in cells]
    boxes = [b for b in boxes if b[0] < b[1] and b[2] < b[3]]
    r0 = min(b[0] for b in boxes) // shard * shard
    r1 = min(rows, -(-max(b[1] for b in boxes) // shard) * shard)
    c0 = min(b[2] for b in boxes) // shard * shard
    c1 = min(cols, -(-max(b[3] for b in boxes) // shard) * shard)
    return r0, r1, c0, c1


def write_zone_store(root, groups, cells, chunk=CHUNK, shard=SHARD, sea=()):
    """Write `groups` ({name: {"complete": [years], "written": [years]}}) under `root`, each with
    data over the footprint of every cell of `cells` ([(lon_c, lat_c)]) that it reaches, in the
    years `written` (a year written but not in `complete` stands for a zone-year never filled
    properly), in inner chunks of `chunk` pixels a side within shards of `shard` (the published
    store: 256 and 2048). The footprint (with its margin) of each cell of `sea` (also in `cells`)
    gets NaN scales in every written year, as sea inside a stored shard has in the published
    store. Returns {group: [(r0, r1, c0, c1), ...]}: the shard-aligned regions written."""
    root = Path(root)
    store = zarr.storage.LocalStore(root)
    top = zarr.open_group(store, mode="w", zarr_format=3)
    top.attrs.update({"zone_scheme": "utm_6deg_nominal", "geoemb:dimensions": BANDS})
    regions = {}
    for name, spec in groups.items():
        west, north, rows, cols = grid(name)
        g = top.create_group(name)
        code = f"EPSG:{epsg_of(name)}"
        g.attrs.update({
            "proj:code": code,
            "crs": code,
            "spatial:dimensions": ["northing", "easting"],
            "spatial:transform_type": "affine",
            # As the publisher writes it: the first pixel centres as the offsets.
            "spatial:transform": [PIXEL, 0.0, west + PIXEL / 2, 0.0, -PIXEL, north - PIXEL / 2],
            "spatial:shape": [rows, cols],
            "spatial:registration": "pixel",
            "years_complete": spec["complete"],
        })
        g.create_array("easting", data=west + (np.arange(cols) + 0.5) * PIXEL,
                       dimension_names=["easting"], chunks=(cols,))
        g.create_array("northing", data=north - (np.arange(rows) + 0.5) * PIXEL,
                       dimension_names=["northing"], chunks=(65536,))
        days = [(np.datetime64(f"{y}-01-01") - np.datetime64("1970-01-01")).astype(int)
                for y in YEARS]
        t = g.create_array("time", data=np.array(days, dtype=np.int64), dimension_names=["time"])
        t.attrs.update({"units": "days since 1970-01-01", "calendar": "proleptic_gregorian"})
        g.create_array("band", data=np.arange(BANDS, dtype=np.int16), dimension_names=["band"])
        emb = g.create_array(
            "embeddings", shape=(len(YEARS), rows, cols, BANDS), dtype="int8",
            chunks=(1, chunk, chunk, BANDS), shards=(1, shard, shard, BANDS), fill_value=0,
            dimension_names=["time", "northing", "easting", "band"])
        sc = g.create_array(
            "scales", shape=(len(YEARS), rows, cols), dtype="float32",
            chunks=(1, chunk, chunk), shards=(1, shard, shard), fill_value=float("nan"),
            serializer=PCodec(), compressors=None,
            dimension_names=["time", "northing", "easting"])
        cnt = g.create_array(
            "s2_obs_count", shape=(len(YEARS), rows, cols), dtype="uint16",
            chunks=(1, chunk, chunk), shards=(1, shard, shard), fill_value=0,
            dimension_names=["time", "northing", "easting"])
        r0, r1, c0, c1 = regions[name] = written_region(name, cells, shard)
        for year in spec["written"]:
            ti = YEARS.index(year)
            for rs in range(r0, r1, shard):
                re_ = min(rs + shard, r1)
                e, s, n = content(name, year, rs, re_, c0, c1)
                for cell in sea:
                    b0, b1, d0, d1 = footprint(name, *cell)
                    s[max(b0 - rs, 0):max(b1 - rs, 0), max(d0 - c0, 0):max(d1 - c0, 0)] = np.nan
                emb[ti, rs:re_, c0:c1, :] = e
                sc[ti, rs:re_, c0:c1] = s
                cnt[ti, rs:re_, c0:c1] = n
    return regions


def group_grid(group):
    """(epsg, west edge, north edge) of a fixture group, for references."""
    west, north, _, _ = grid(group)
    return epsg_of(group), west, north


# -- The plain copy on Source Coop, as geotessera's transcoder writes it (geotessera
# transcode.py / icechunk_source.py): one group `utmZZ` per zone spanning both hemispheres on
# one grid in EPSG:326ZZ (a southern group's northings shifted by -10 000 km, so negative south
# of the equator), extents padded to whole shards, `embeddings` (time, band, y, x), `scales`
# and `s2_obs_count` (time, y, x), blosc zstd 3, `x`/`y` pixel-centre coordinates, an int32
# `time` axis of years, `spatial:transform` at the corner of pixel 0, and the hemisphere
# groups' attributes (with `years_complete`) under `geotessera:source_groups`. Where both
# hemispheres hold a pixel (the equatorial overlap), the northern one is kept.
UTM_CHUNK = 32


def hemisphere_top(group):
    """North edge of a hemisphere group's grid in EPSG:326ZZ northings, and its rows."""
    lo, hi = NORTHING[group[-1]]
    shift = 10_000_000.0 if group[-1] == "S" else 0.0
    return hi - shift, round((hi - lo) / PIXEL)


def utm_grid(hemispheres, shard):
    """(west, top, rows, cols) of the zone grid joining `hemispheres` (as the transcoder's
    zone_grid: the union, padded to whole shards)."""
    tops = [hemisphere_top(h) for h in hemispheres]
    top = max(t for t, _ in tops)
    bottom = min(t - r * PIXEL for t, r in tops)
    rows = -(-round((top - bottom) / PIXEL) // shard) * shard
    cols = -(-round((EASTING[1] - EASTING[0]) / PIXEL) // shard) * shard
    return EASTING[0], top, rows, cols


def utm_footprint(zone, grid_, lon_c, lat_c, margin=8):
    t = Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + zone}", always_xy=True)
    lo, la = np.meshgrid(np.linspace(lon_c - 0.05, lon_c + 0.05, 21),
                         np.linspace(lat_c - 0.05, lat_c + 0.05, 21))
    e, n = t.transform(lo.ravel(), la.ravel())
    west, top, rows, cols = grid_
    c0 = max(0, math.floor((min(e) - west) / PIXEL) - margin)
    c1 = min(cols, math.ceil((max(e) - west) / PIXEL) + margin)
    r0 = max(0, math.floor((top - max(n)) / PIXEL) - margin)
    r1 = min(rows, math.ceil((top - min(n)) / PIXEL) + margin)
    return r0, r1, c0, c1


def utm_content(hemispheres, groups, regions, top, year, r0, r1, c0, c1):
    """Rows r0..r1, columns c0..c1 of a zone grid in a year: each pixel from the hemisphere
    group it lies in (north of the equator the northern one where it was written that year,
    else the southern one), as write_zone_store wrote it (its content inside its written
    region, fill outside); fill elsewhere."""
    emb = np.zeros((r1 - r0, c1 - c0, BANDS), np.int8)
    sc = np.full((r1 - r0, c1 - c0), np.nan, np.float32)
    cnt = np.zeros((r1 - r0, c1 - c0), np.uint16)
    for i, r in enumerate(range(r0, r1)):
        y = top - (r + 0.5) * PIXEL
        for h in sorted(hemispheres, key=lambda h: (h[-1] == "N") != (y > 0)):
            if year not in groups[h]["written"]:
                continue
            h_top, _ = hemisphere_top(h)
            hr = r + round((h_top - top) / PIXEL)
            hr0, hr1, hc0, hc1 = regions[h]
            if hr0 <= hr < hr1:
                e, s, n = content(h, year, hr, hr + 1, c0, c1)
                keep = (np.arange(c0, c1) >= hc0) & (np.arange(c0, c1) < hc1)
                emb[i][keep], sc[i][keep], cnt[i][keep] = e[0][keep], s[0][keep], n[0][keep]
                break
    return emb, sc, cnt


def write_utm_store(root, groups, cells, chunk=UTM_CHUNK, shard=SHARD, sea=()):
    """The store of `write_zone_store(root, groups, cells, sea=sea)` in the transcoder's layout:
    the same content at the same ground, one group per zone. Returns {group: (west, top)}."""
    from zarr.codecs import BloscCodec
    store = zarr.storage.LocalStore(Path(root))
    top_group = zarr.open_group(store, mode="w", zarr_format=3)
    top_group.attrs.update({"geoemb:dimensions": BANDS, "geotessera:mask_source": "source_nodata"})
    zones = sorted({int(h[:2]) for h in groups})
    grids = {}
    for zone in zones:
        hemispheres = [h for h in groups if int(h[:2]) == zone]
        west, top, rows, cols = utm_grid(hemispheres, shard)
        name = f"utm{zone:02d}"
        grids[name] = (west, top)
        g = top_group.create_group(name)
        g.attrs.update({
            "proj:code": f"EPSG:{32600 + zone}",
            "spatial:dimensions": ["y", "x"],
            "spatial:transform": [PIXEL, 0.0, west, 0.0, -PIXEL, top],
            "spatial:shape": [rows, cols],
            "spatial:registration": "pixel",
            "geotessera:mask_source": "source_nodata",
            "geotessera:source_groups": {
                h: {"proj:code": f"EPSG:{epsg_of(h)}", "years_complete": groups[h]["complete"]}
                for h in hemispheres},
        })
        blosc = BloscCodec(cname="zstd", clevel=3)
        g.create_array("x", data=west + (np.arange(cols) + 0.5) * PIXEL, dimension_names=["x"],
                       chunks=(cols,))
        g.create_array("y", data=top - (np.arange(rows) + 0.5) * PIXEL, dimension_names=["y"],
                       chunks=(65536,))
        g.create_array("time", data=np.array(YEARS, np.int32), dimension_names=["time"])
        g.create_array("band", data=np.arange(BANDS, dtype=np.int32), dimension_names=["band"])
        emb = g.create_array(
            "embeddings", shape=(len(YEARS), BANDS, rows, cols), dtype="int8",
            chunks=(1, BANDS, chunk, chunk), shards=(1, BANDS, shard, shard), fill_value=0,
            compressors=blosc, dimension_names=["time", "band", "y", "x"])
        sc = g.create_array(
            "scales", shape=(len(YEARS), rows, cols), dtype="float32",
            chunks=(1, chunk, chunk), shards=(1, shard, shard), fill_value=float("nan"),
            compressors=blosc, dimension_names=["time", "y", "x"])
        cnt = g.create_array(
            "s2_obs_count", shape=(len(YEARS), rows, cols), dtype="uint16",
            chunks=(1, chunk, chunk), shards=(1, shard, shard), fill_value=0,
            compressors=blosc, dimension_names=["time", "y", "x"])
        # The hemisphere groups' written regions, on this grid, aligned outward to shards.
        regions = {h: written_region(h, cells) for h in hemispheres}
        moved = [(hr0 - round((hemisphere_top(h)[0] - top) / PIXEL),
                  hr1 - round((hemisphere_top(h)[0] - top) / PIXEL), hc0, hc1)
                 for h, (hr0, hr1, hc0, hc1) in regions.items()]
        r0 = min(b[0] for b in moved) // shard * shard
        r1 = min(rows, -(-max(b[1] for b in moved) // shard) * shard)
        c0 = min(b[2] for b in moved) // shard * shard
        c1 = min(cols, -(-max(b[3] for b in moved) // shard) * shard)
        written = sorted({y for h in hemispheres for y in groups[h]["written"]})
        for year in written:
            ti = YEARS.index(year)
            for rs in range(r0, r1, shard):
                re_ = min(rs + shard, r1)
                e, s, n = utm_content(hemispheres, groups, regions, top, year, rs, re_, c0, c1)
                for cell in sea:
                    b0, b1, d0, d1 = utm_footprint(zone, (west, top, rows, cols), *cell)
                    s[max(b0 - rs, 0):max(b1 - rs, 0), max(d0 - c0, 0):max(d1 - c0, 0)] = np.nan
                emb[ti, :, rs:re_, c0:c1] = e.transpose(2, 0, 1)
                sc[ti, rs:re_, c0:c1] = s
                cnt[ti, rs:re_, c0:c1] = n
    return grids
