"""Independent reference implementation of the TESSERA facts (DESIGN.md section 1) with pyproj.

Nothing here uses tessera-mosaic's code: tile names, the georeference rule, source pixel lookup
and no-data rules are re-derived from the design notes so that tests compare two independent
implementations.
"""

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
from pyproj import Transformer


def cell_name(lon_index: int, lat_index: int) -> str:
    lon_h = -18000 + 10 * lon_index + 5
    lat_h = -9000 + 10 * lat_index + 5

    def fmt(h):
        s = "-" if h < 0 else ""
        return f"{s}{abs(h) // 100}.{abs(h) % 100:02d}"

    return f"grid_{fmt(lon_h)}_{fmt(lat_h)}"


def cell_of(lon: float, lat: float):
    """(lon_index, lat_index) of the 0.1-degree cell holding a point."""
    return int(math.floor((lon + 180.0) * 10)), int(math.floor((lat + 90.0) * 10))


def parse_name(name: str):
    lon_s, lat_s = name[len("grid_"):].split("_")
    return float(lon_s), float(lat_s)


@lru_cache(maxsize=None)
def transformer(epsg: int) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


@lru_cache(maxsize=None)
def tile_geometry(name: str):
    """(epsg, origin_e, origin_n, height, width) by the TESSERA rule."""
    lon_c, lat_c = parse_name(name)
    zone = int(math.floor((lon_c + 180) / 6)) + 1
    epsg = (32600 if lat_c >= 0 else 32700) + zone
    t = transformer(epsg)
    w, e, s, n = lon_c - 0.05, lon_c + 0.05, lat_c - 0.05, lat_c + 0.05
    ul = t.transform(w, n)
    ur = t.transform(e, n)
    ll = t.transform(w, s)
    lr = t.transform(e, s)
    origin_e = min(ul[0], ll[0])
    origin_n = max(ul[1], ur[1])
    height = round((origin_n - min(ll[1], lr[1])) / 10)
    width = round((max(ur[0], lr[0]) - origin_e) / 10)
    return epsg, origin_e, origin_n, height, width


def source_pixels(name: str, lons: np.ndarray, lats: np.ndarray):
    """Source (row, col) of each (lon, lat) point, -1 where outside the tile."""
    epsg, oe, on, h, w = tile_geometry(name)
    e, n = transformer(epsg).transform(lons, lats)
    c = np.floor((np.asarray(e) - oe) / 10).astype(np.int64)
    r = np.floor((on - np.asarray(n)) / 10).astype(np.int64)
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    return np.where(inside, r, -1), np.where(inside, c, -1)


def valid_scale(s):
    s = np.asarray(s, dtype=np.float32)
    return np.isfinite(s) & (s > 0) & (s < 1e6)


class Tile:
    """A tile's arrays, memory-mapped, plus its landmask when present."""

    def __init__(self, root: Path, year: int, name: str, landmask_dir: Path | None = None):
        d = Path(root) / str(year) / name
        self.emb = np.load(d / f"{name}.npy", mmap_mode="r")
        scales = np.load(d / f"{name}_scales.npy", mmap_mode="r")
        self.scales = scales[..., 0] if scales.ndim == 3 else scales
        self.mask = None
        if landmask_dir is not None and (Path(landmask_dir) / f"{name}.tiff").exists():
            import rasterio

            with rasterio.open(Path(landmask_dir) / f"{name}.tiff") as src:
                self.mask = src.read(1)

    def expected(self, rows, cols, fill=0):
        """Expected (embeddings, scales) for source pixels (rows, cols); -1 means outside."""
        n = len(rows)
        emb = np.full((n, 128), fill, dtype=np.int8)
        sc = np.full(n, np.nan, dtype=np.float32)
        ok = rows >= 0
        r, c = rows[ok], cols[ok]
        s = np.asarray(self.scales[r, c], dtype=np.float32)
        good = valid_scale(s)
        if self.mask is not None:
            good &= self.mask[r, c] != 0
        idx = np.flatnonzero(ok)[good]
        emb[idx] = self.emb[r[good], c[good]]
        sc[idx] = s[good]
        return emb, sc
