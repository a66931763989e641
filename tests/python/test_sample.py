"""`mosaic sample` against xarray's nearest selection on the band that holds each latitude."""

import json
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr

from conftest import mosaic

BANDS = {"60-70": (60.0, 70.0), "70-80": (70.0, 80.0), "S70-S60": (-70.0, -60.0)}


def points(seed=3):
    """Points across the 70N band edge (both sides, and exactly on it), in the south, on no
    data (a cell without tiles), outside every band, and on the closed eastern edge."""
    rng = np.random.default_rng(seed)
    n = 120
    lon = np.concatenate([rng.uniform(5.9, 6.1, n), rng.uniform(-66.1, -65.9, 40),
                          [6.0, 5.95, 100.0, 10.0, 180.0, -180.0]])
    lat = np.concatenate([rng.uniform(69.9, 70.2, n), rng.uniform(-65.0, -64.9, 40),
                          [70.0, 70.0, 70.05, 0.0, 70.05, -64.95]])
    return pd.DataFrame({
        "id": np.arange(lon.size, dtype=np.int64) * 7,
        "lon": lon,
        "lat": lat,
        "label": [f"class {i % 5}, \"q\"" for i in range(lon.size)],
        "weight": np.linspace(0.5, 1.5, lon.size),
    })


def expected(sample, df, years=(2023, 2024)):
    """Per point and year (point-major): band, row, col, scale, embedding, from xarray."""
    rows = []
    found = [None] * len(df)
    for name, (lo, hi) in BANDS.items():
        inside = np.flatnonzero((df.lat.values >= lo) & (df.lat.values < hi))
        if inside.size == 0:
            continue
        ds = xr.open_zarr(sample["store"], group=name, chunks=None)
        lat = xr.DataArray(df.lat.values[inside], dims="p")
        lon = xr.DataArray(df.lon.values[inside], dims="p")
        sel = ds.sel(lat=lat, lon=lon, method="nearest")
        r = ds.indexes["lat"].get_indexer(sel.lat.values)
        c = ds.indexes["lon"].get_indexer(sel.lon.values)
        for j, i in enumerate(inside):
            found[i] = (name, r[j], c[j], sel.sel(p=j))
    for i in range(len(df)):
        for y in years:
            if found[i] is None:
                rows.append((None, None, None, np.nan, None))
                continue
            name, r, c, s = found[i]
            scale = float(s.scales.sel(year=y).values) if y in s.year.values else np.nan
            emb = s.embeddings.sel(year=y).values if not np.isnan(scale) else None
            rows.append((name, r, c, scale, emb))
    return rows


def write_csv(df, path):
    df.to_csv(path, index=False)
    return path


def check(out, df, want, dequantize=False, years=(2023, 2024)):
    """Every output row against xarray: carried columns, year, band, pixel, scale, vector."""
    assert len(out) == len(want) == len(df) * len(years)
    for k, (name, r, c, scale, emb) in enumerate(want):
        i, y = divmod(k, len(years))
        row = out.iloc[k]
        assert row["id"] == df.id.iloc[i] and row["label"] == df.label.iloc[i]
        assert row["weight"] == df.weight.iloc[i] and row["lon"] == df.lon.iloc[i]
        assert row["year"] == years[y]
        if name is None:
            assert pd.isna(row["band"]) and pd.isna(row["row"]) and np.isnan(row["scale"])
            continue
        assert (row["band"], row["row"], row["col"]) == (name, r, c), k
        if np.isnan(scale):
            assert np.isnan(row["scale"]), k
            assert row["embedding"] is None
            continue
        assert np.float32(row["scale"]) == np.float32(scale), k
        got = np.asarray(row["embedding"])
        if dequantize:
            np.testing.assert_array_equal(got, emb.astype(np.float32) * np.float32(scale))
        else:
            np.testing.assert_array_equal(got, emb)


def summary(proc):
    return proc.stdout.splitlines()[0]


def test_csv_points_to_parquet_equal_xarray_nearest(sample, tmp_path):
    df = points()
    out = tmp_path / "out.parquet"
    proc = mosaic("sample", "--store", sample["store"], "--points", write_csv(df, tmp_path / "p.csv"),
                  "-o", out, "--batch", "50")
    table = pq.read_table(out)
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64() and types["weight"] == pa.float64()
    assert types["label"] == pa.string() and types["lon"] == pa.float64()
    assert types["year"] == pa.int32() and types["band"] == pa.string()
    assert types["row"] == pa.int64() and types["col"] == pa.int64()
    assert types["scale"] == pa.float32()
    assert pa.types.is_list(types["embedding"]) and types["embedding"].value_type == pa.int8()
    assert all(len(v) == 128 for v in table["embedding"].to_pylist() if v is not None)
    want = expected(sample, df)
    check(table.to_pandas(), df, want)
    # Both sides of the edge, both hemispheres and every kind of row are really exercised.
    bands = {w[0] for w in want}
    assert {"60-70", "70-80", "S70-S60", None} <= bands
    with_data = sum(not np.isnan(w[3]) for w in want)
    assert with_data > 100 and any(np.isnan(w[3]) and w[0] for w in want)
    outside = sum(w[0] is None for w in want) // 2
    no_data = sum(bool(w[0]) and np.isnan(w[3]) for w in want)
    line = summary(proc)
    assert f"{len(df)} points x 2 years" in line
    assert f"{with_data} sampled, {outside} points outside every band, {no_data} on no data" in line
    assert "inner chunks read" in line and "requests" in line


def test_latitude_on_the_band_edge_is_the_northern_bands_first_row(sample, tmp_path):
    df = pd.DataFrame({"lon": [5.95, 6.0], "lat": [70.0, 70.0]})
    out = tmp_path / "edge.parquet"
    mosaic("sample", "--store", sample["store"], "--points", write_csv(df, tmp_path / "e.csv"), "-o", out)
    t = pq.read_table(out).to_pandas()
    assert list(t.band) == ["70-80"] * 4 and list(t.row) == [0] * 4
    # xarray's nearest on the 70-80 band picks row 0 too (the southern band's last row
    # centre is as far, and that band's range ends below 70).
    ds = xr.open_zarr(sample["store"], group="70-80", chunks=None)
    assert ds.indexes["lat"].get_indexer([70.0], method="nearest")[0] == 0
    # lon 5.95 lies exactly on a pixel edge: the column is the one xarray's nearest picks.
    cols = ds.indexes["lon"].get_indexer([5.95, 6.0], method="nearest")
    assert list(t.col) == [cols[0], cols[0], cols[1], cols[1]]


def test_parquet_points_to_csv_dequantized_one_year(sample, tmp_path):
    df = points(seed=5)
    src = tmp_path / "p.parquet"
    df.to_parquet(src, index=False)
    out = tmp_path / "out.csv"
    mosaic("sample", "--store", sample["store"], "--points", src, "--years", "2024", "--dequantize", "-o", out)
    got = pd.read_csv(out, keep_default_na=False, na_values=[""]).copy()
    assert list(got.columns[:10]) == ["id", "lon", "lat", "label", "weight", "year", "band", "row", "col", "scale"]
    assert list(got.columns[10:]) == [f"e{c}" for c in range(128)]
    got = got.assign(embedding=[None if np.isnan(s) else r for s, r in
                        zip(got.scale, got[[f"e{c}" for c in range(128)]].to_numpy(np.float32))])
    check(got, df, expected(sample, df, years=(2024,)), dequantize=True, years=(2024,))


def wkb(x, y, little=True):
    return struct.pack("<BIdd" if little else ">BIdd", 1 if little else 0, 1, x, y)


def test_geoparquet_points(sample, tmp_path):
    df = points(seed=7)
    geom = [wkb(x, y, little=i % 2 == 0) for i, (x, y) in enumerate(zip(df.lon, df.lat))]
    table = pa.table({"id": df.id, "label": df.label, "weight": df.weight, "geometry": pa.array(geom, pa.binary())})
    geo = {"version": "1.1.0", "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Point"]}}}
    table = table.replace_schema_metadata({"geo": json.dumps(geo)})
    src = tmp_path / "p.parquet"
    pq.write_table(table, src, row_group_size=40)
    out = tmp_path / "out.parquet"
    mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, "--batch", "25")
    got = pq.read_table(out).to_pandas()
    assert list(got.geometry[::2]) == geom
    got["lon"] = np.repeat(df.lon.values, 2)
    check(got, df, expected(sample, df))


def bad(sample, tmp_path, text, *extra, name="p.csv"):
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "out.parquet"
    proc = mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, *extra, check=False)
    assert proc.returncode != 0
    assert not out.exists() and not (tmp_path / "out.parquet.partial").exists()
    return proc.stderr


@pytest.mark.parametrize("text, extra, message", [
    ("x,lat\n6,70\n", (), "no column `lon` (columns: x, lat); name it with --lon-col"),
    ("lon,y\n6,70\n", ("--lat-col", "latitude"), "no column `latitude` (columns: lon, y)"),
    ("lon,lat\n6,70\n6,north\n", (), "row 2 (line 3): lat `north` is not a number"),
    ("lon,lat\n6,70\n\n190,70\n", (), "row 2 (line 4): lon 190 is outside -180..180"),
    ("lon,lat\n6,70\n6,-91\n", (), "row 2 (line 3): lat -91 is outside -90..90"),
    ("lon,lat\n6,\n", (), "row 1 (line 2): lat is empty"),
    ("", (), "the file is empty"),
    ("lon,lat\n", (), "has a header but no rows"),
    ("lon,lat\n6,70\n", ("--years", "2019"), "year 2019 is not in the store"),
])
def test_bad_csv_input_is_a_clear_error(sample, tmp_path, text, extra, message):
    assert message in bad(sample, tmp_path, text, *extra)


def test_bad_parquet_input_names_the_row(sample, tmp_path):
    src = tmp_path / "p.parquet"
    pq.write_table(pa.table({"lon": [6.0, 6.0, 6.0], "lat": [70.0, None, 70.0]}), src)
    out = tmp_path / "out.parquet"
    proc = mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, check=False)
    assert proc.returncode != 0 and "row 2: lat is empty" in proc.stderr and not out.exists()
    pq.write_table(pa.table({"lon": ["6"], "lat": [70.0]}), src)
    proc = mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, check=False)
    assert proc.returncode != 0 and "column `lon` is not a number column" in proc.stderr
    pq.write_table(pa.table({"lon": pa.array([], pa.float64()), "lat": pa.array([], pa.float64())}), src)
    proc = mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, check=False)
    assert proc.returncode != 0 and "has no rows" in proc.stderr


def parquet_types(path):
    """Each column's Parquet type as pyarrow's Parquet reader describes it (not the tool)."""
    schema = pq.ParquetFile(path).schema
    return {c.path: (c.physical_type, str(c.logical_type), c.converted_type, c.length, c.precision,
                     c.scale, c.max_definition_level, c.max_repetition_level)
            for c in (schema.column(i) for i in range(len(schema)))}


def same_values(a, b):
    """Two value lists equal, NaN equal to NaN."""
    same = lambda x, y: x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)
    return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))


def test_parquet_columns_keep_their_types_and_nested_and_int96_columns_are_named(sample, tmp_path):
    import datetime
    import decimal

    # Points in band 70-80, one on its southern edge, one outside every band; `--batch 2` splits
    # them into three batches.
    lon, lat = [5.93, 6.04, 5.95, 100.0, 6.02], [70.03, 70.01, 70.0, 0.0, 70.08]
    n = len(lon)
    date, dec = datetime.date, decimal.Decimal
    columns = {
        "lon": pa.array(lon, pa.float64()), "lat": pa.array(lat, pa.float32()),
        "i8": pa.array([1, -2, None, 127, -128], pa.int8()),
        "i16": pa.array([1, -2, 300, None, 5], pa.int16()),
        "i32": pa.array([1, -2, 3, 2**31 - 1, None], pa.int32()),
        "i64": pa.array([2**40, None, -5, 0, -2**63], pa.int64()),
        "u8": pa.array([255, 0, None, 2, 3], pa.uint8()),
        "u32": pa.array([2**32 - 1, 0, 1, 2, None], pa.uint32()),
        "u64": pa.array([2**64 - 1, 0, 1, None, 7], pa.uint64()),
        "f16": pa.array([1.5, None, 2.0, 3.0, -0.25], pa.float16()),
        "f32": pa.array([1.5, None, float("nan"), 3.25, 1e-30], pa.float32()),
        "f64": pa.array([1.5, 2.5, None, -0.0, 1e300], pa.float64()),
        "flag": pa.array([True, False, None, True, False]),
        "name": pa.array(["a", None, "ç", "", "x,y \"q\""]),
        "big_name": pa.array(["a", None, "x", "", "z"], pa.large_string()),
        "raw": pa.array([b"\x00\xff", None, b"", b"a", b"\n"], pa.binary()),
        "fixed": pa.array([b"ab", b"cd", None, b"ef", b"\x00\x01"], pa.binary(2)),
        "day": pa.array([date(2020, 1, 2), None, date(1900, 1, 1), date(2100, 12, 31), date(1970, 1, 1)], pa.date32()),
        "ts_ms": pa.array([0, 1_600_000_000_000, None, -1, 5], pa.timestamp("ms")),
        "ts_us_utc": pa.array([0, 1_600_000_000_000_000, None, -1, 5], pa.timestamp("us", tz="UTC")),
        "ts_ns_paris": pa.array([0, 1, None, -1, 5], pa.timestamp("ns", tz="Europe/Paris")),
        "t32": pa.array([0, 1000, None, 86_399_999, 7], pa.time32("ms")),
        "t64": pa.array([0, 1000, None, 5, 86_399_999_999], pa.time64("us")),
        "dec5": pa.array([dec("1.23"), None, dec("-99.99"), dec("0.00"), dec("5.00")], pa.decimal128(5, 2)),
        "dec38": pa.array([dec("1.23"), None, dec("-1" + "0" * 35), dec("0.00"), dec("5.01")], pa.decimal128(38, 2)),
        "category": pa.array(["x", "y", None, "x", "y"]).dictionary_encode(),
        "seconds": pa.array([1, None, 3, 4, -5], pa.duration("s")),
        "required": pa.array([1, 2, 3, 4, 5], pa.int32()),
        "tags": pa.array([[1], [], None, [2, 3], [4]], pa.list_(pa.int32())),
        "where": pa.array([{"a": 1}, None, {"a": 2}, {"a": 3}, {"a": 4}], pa.struct([("a", pa.int64())])),
        "attrs": pa.array([[("k", 1)], None, [], [("z", 2)], []], pa.map_(pa.string(), pa.int64())),
    }
    schema = pa.schema([pa.field(k, v.type, nullable=k != "required") for k, v in columns.items()])
    table = pa.table(columns, schema=schema)
    src = tmp_path / "typed.parquet"
    pq.write_table(table, src)
    nested = {"tags", "where", "attrs"}
    out = tmp_path / "out.parquet"
    proc = mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, "--batch", "2")
    assert "columns not carried" in proc.stderr, proc.stderr
    said = proc.stderr.split("columns not carried", 1)[1]
    assert all(f"{k} (nested)" in said for k in nested), proc.stderr

    got = pq.read_table(out)
    carried = [k for k in columns if k not in nested]
    assert got.column_names[:len(carried)] == carried
    assert not nested & set(got.column_names)
    # The Parquet types, column by column, as pyarrow reads both files.
    want_pq, got_pq = parquet_types(src), parquet_types(out)
    for k in carried:
        assert got_pq[k] == want_pq[k], k
    # So pyarrow gives back the same Arrow type, except for what only pyarrow's own stored
    # Arrow schema (ARROW:schema metadata, not carried) says: these four, documented.
    arrow_only = {"big_name": pa.string(), "category": pa.string(), "seconds": pa.int64(),
                  "ts_ns_paris": pa.timestamp("ns", tz="UTC")}
    for k in carried:
        assert got.schema.field(k).type == arrow_only.get(k, table.schema.field(k).type), k
        assert got.schema.field(k).nullable == (k != "required"), k
    # Every value, in every year's row (two years: point-major, two rows per point).
    assert got.num_rows == 2 * n
    for k in carried:
        want = table[k]
        if k in arrow_only:
            want = want.cast(pa.string()) if k == "category" else want.cast(arrow_only[k])
        want = want.to_pylist()
        values = got[k].to_pylist()
        assert same_values(values[0::2], want) and same_values(values[1::2], want), k
    assert got["band"].to_pylist()[6:8] == [None, None]

    # INT96 (pyarrow writes every timestamp so when asked: the deprecated Impala form).
    src96 = tmp_path / "int96.parquet"
    pq.write_table(pa.table({"lon": lon, "lat": lat, "when": pa.array([0, 1, 2, 3, 4], pa.timestamp("ns")),
                             "id": pa.array(range(n), pa.int64())}), src96, use_deprecated_int96_timestamps=True)
    assert parquet_types(src96)["when"][0] == "INT96"
    proc = mosaic("sample", "--store", sample["store"], "--points", src96, "-o", out)
    assert "columns not carried" in proc.stderr and "when (INT96)" in proc.stderr, proc.stderr
    got = pq.read_table(out)
    assert got.column_names[:3] == ["lon", "lat", "id"] and "when" not in got.column_names
    assert got["id"].to_pylist()[0::2] == list(range(n))


def test_csv_columns_are_int64_double_or_text_with_empty_cells_null(sample, tmp_path):
    import csv
    import io

    text = (
        "lon,lat,count,mixed,text,nothing,huge,spaced,quoted_num\n"
        "5.93,70.03,7,1,a,,9223372036854775807,\" a b \",\"12\"\n"
        "6.04,70.01,,2.5,1,,9223372036854775808,x,\n"
        "100.0,0.0,-3,,,  ,1,\"x,y\",-4\n"
        "5.95,70.0,+4,1e3,\"say \"\"hi\"\"\",,2, ,0\n"
        "6.02,70.08, 12 ,-0,2.0,,3,\"two\nlines\",  5 \n"
    )
    src = tmp_path / "p.csv"
    src.write_text(text)
    out = tmp_path / "out.parquet"
    mosaic("sample", "--store", sample["store"], "--points", src, "-o", out, "--batch", "2")
    got = pq.read_table(out)

    # The expected types and values from Python's csv module and the documented rule.
    rows = list(csv.reader(io.StringIO(text)))
    header, rows = rows[0], rows[1:]

    def integer(cell):
        try:
            v = int(cell)
        except ValueError:
            return None
        return v if -2**63 <= v < 2**63 else None

    def number(cell):
        try:
            return float(cell)
        except ValueError:
            return None

    want_types = {}
    for j, name in enumerate(header):
        cells = [r[j].strip() for r in rows if r[j].strip()]
        if all(integer(c) is not None for c in cells):
            want_types[name], parse = pa.int64(), integer
        elif all(number(c) is not None for c in cells):
            want_types[name], parse = pa.float64(), number
        else:
            want_types[name], parse = pa.string(), lambda c: c
        # Blank cells are null; numbers are read without the blanks around them, text as written.
        text_column = want_types[name] == pa.string()
        want = [None if not r[j].strip() else r[j] if text_column else parse(r[j].strip()) for r in rows]
        assert got.schema.field(name).type == want_types[name], name
        values = got[name].to_pylist()
        assert values[0::2] == want and values[1::2] == want, (name, values, want)
    # Each kind is really there: integers with empty cells, an all-empty column, numbers, text.
    assert [want_types[k] for k in ("count", "mixed", "text", "nothing", "huge", "quoted_num")] == [
        pa.int64(), pa.float64(), pa.string(), pa.int64(), pa.float64(), pa.int64()]
    assert got["nothing"].null_count == got.num_rows
    assert got["spaced"].to_pylist()[0::2] == [" a b ", "x", "x,y", None, "two\nlines"]
