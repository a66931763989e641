"""TESSERA's catalogue exactly as geotessera 0.11.0 wrote it (`../shared/fixtures/geotessera/`),
read from any mirror and written into your own bucket (issue 24).

The tree is the one the fixtures were written over (`mosaic synth --bbox 10.0,69.9,10.3,70.1
--years 2024 --landmasks`, seed 42: 6 tiles), laid out as TESSERA's bucket:
`tessera/npy/v1/{year}/grid_*/...` beside geotessera's `manifest.parquet` (paths are
`s3://tessera-n/...` URLs), `tessera/landmasks/v1/grid_*.tiff` beside its `landmasks.parquet`.
Every build from it must equal the build of the plain tree, chunk for chunk."""

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import MOSAIC, REPO, mosaic
from seaweed import KEY, SECRET, seaweed

# A copy of ../shared/fixtures/geotessera/ kept in the repository (as tile_geometry.csv is), so
# that the tests never skip for want of it.
FIXTURES = REPO / "tests" / "fixtures" / "geotessera"
MANIFEST = FIXTURES / "s3scan/v1/manifest.parquet"
LANDMASKS = FIXTURES / "s3scan/v1/landmasks.parquet"
BANDS = "60-70,70-80"



def shards(store):
    """Every shard of both bands' embeddings and scales, by key."""
    keys = {str(p.relative_to(store)): p for p in Path(store).rglob("*") if p.is_file()}
    return {k: p.read_bytes() for k, p in keys.items()
            if "/embeddings/c/" in k or "/scales/c/" in k}


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    d = tmp_path_factory.mktemp("geotessera")
    tiles = d / "tiles"
    mosaic("synth", "--out", tiles, "--bbox", "10.0,69.9,10.3,70.1", "--years", "2024", "--landmasks")
    # The sizes geotessera listed are those of this tree (synth is deterministic).
    for row in pq.read_table(MANIFEST).to_pylist():
        name = f"grid_{row['lon']:.2f}_{row['lat']:.2f}"
        assert (tiles / "2024" / name / f"{name}.npy").stat().st_size == row["grid_size"]
    reference = d / "reference.zarr"
    mosaic("build", "--input", tiles, "--out", reference, "--band", BANDS, cwd=REPO)
    mirror = d / "mirror"
    npy = mirror / "tessera/npy/v1"
    shutil.copytree(tiles / "2024", npy / "2024")
    shutil.copy(MANIFEST, npy / "manifest.parquet")
    masks = mirror / "tessera/landmasks/v1"
    shutil.copytree(tiles / "global_0.1_degree_tiff_all", masks)
    shutil.copy(LANDMASKS, masks / "landmasks.parquet")
    yield {"dir": d, "tiles": tiles, "reference": reference, "mirror": mirror, "npy": npy,
           "landmasks": masks / "landmasks.parquet"}
    shutil.rmtree(d, ignore_errors=True)


def test_a_local_mirror_of_the_published_catalogue_builds_the_same_store(bucket, tmp_path):
    """grid_path, scales_path and the landmasks' key are s3:// URLs of TESSERA's bucket: from
    a local mirror each file comes from the naming rule under --input, as geotessera finds it."""
    plan = mosaic("plan", "--input", bucket["npy"], "--landmasks", bucket["landmasks"])
    assert "6 tiles in 1 years" in plan.stdout and "0 problems" in plan.stdout, plan.stdout
    assert "dataset version 1.0, variant vultr" in plan.stdout, plan.stdout
    store = tmp_path / "mirror.zarr"
    proc = mosaic("build", "--input", bucket["npy"], "--landmasks", bucket["landmasks"],
                  "--out", store, "--band", BANDS, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shards(store) == shards(bucket["reference"])


def test_a_manifest_with_two_variants_is_read_as_geotessera_reads_it(bucket, tmp_path):
    """geotessera's s3scan writes every variant under a prefix into one manifest: the rows of the
    chosen (version, variant) are used, the default being what geotessera's Registry picks."""
    rows = pq.read_table(MANIFEST).to_pylist()
    legacy = [dict(r, variant="legacy", grid_path=f"legacy/{r['year']}/x.npy") for r in rows]
    root = tmp_path / "v1"
    root.symlink_to(bucket["npy"], target_is_directory=True)
    both = tmp_path / "both.parquet"
    pq.write_table(pa.Table.from_pylist(rows + legacy, schema=pq.read_schema(MANIFEST)), both)
    args = ["--input", root, "--manifest", both, "--landmasks", bucket["landmasks"]]
    plan = mosaic("plan", *args)
    assert "6 tiles in 1 years" in plan.stdout and "0 problems" in plan.stdout, plan.stdout + plan.stderr
    assert "dataset version 1.0, variant vultr (the input folder `v1`)" in plan.stdout, plan.stdout
    store = tmp_path / "two-variants.zarr"
    mosaic("build", *args, "--out", store, "--band", BANDS, cwd=REPO)
    assert shards(store) == shards(bucket["reference"])
    # The other variant, asked for: its rows (here with relative paths that do not exist).
    plan = mosaic("plan", *args, "--dataset-version", "1.0", "--variant", "legacy")
    assert "variant legacy" in plan.stdout, plan.stdout
    assert "6 tiles in 1 years" in plan.stdout, plan.stdout
    # A dataset the manifest does not hold is an error saying what it holds.
    proc = mosaic("plan", *args, "--dataset-version", "v1.1", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no rows for dataset version 1.1, variant cambridge" in proc.stderr, proc.stderr
    assert '"vultr": 6 rows' in proc.stderr and '"legacy": 6 rows' in proc.stderr, proc.stderr
    # Two chosen rows for one tile: a problem naming both rows, neither used.
    twice = tmp_path / "twice.parquet"
    pq.write_table(pa.Table.from_pylist(rows + [rows[2]], schema=pq.read_schema(MANIFEST)), twice)
    plan = mosaic("plan", "--input", root, "--manifest", twice, "--landmasks", bucket["landmasks"])
    assert "5 tiles in 1 years" in plan.stdout, plan.stdout
    assert "is in rows 2 and 6 of manifest" in plan.stderr, plan.stderr


def test_the_manifest_mosaic_writes_is_what_geotessera_reads(bucket, tmp_path):
    """Columns and types as geotessera's s3scan writes them (mtimes timestamp[us, UTC]), the
    version and variant its Registry asks for by default; and mosaic reads it back."""
    root = tmp_path / "tree"
    shutil.copytree(bucket["tiles"], root)
    out = mosaic("manifest", "--input", root).stdout
    assert "dataset version 1.1, variant cambridge" in out, out
    ours = pq.read_table(root / "manifest.parquet")
    theirs = pq.read_schema(MANIFEST)
    for field in theirs:
        if field.name == "directory":
            continue  # not read by geotessera's Registry
        mine = ours.schema.field(field.name).type
        want = pa.string() if field.type == pa.large_string() else field.type
        assert mine == want, f"{field.name}: {mine} != {field.type}"
    df = ours.to_pandas()
    # geotessera's Registry: rows of its version (default v1.1) and the version's default
    # variant (cambridge), compared as strings.
    chosen = df[(df["version"].astype(str) == "1.1") & (df["variant"].astype(str) == "cambridge")]
    assert len(chosen) == 6
    assert str(df["grid_mtime"].dtype) == "datetime64[us, UTC]"
    assert abs(df["grid_mtime"].iloc[0].timestamp() - (root / "2024").stat().st_mtime) < 3600 * 24
    plan = mosaic("plan", "--input", root)
    assert "6 tiles in 1 years" in plan.stdout and "dataset version 1.1, variant cambridge" in plan.stdout
    # For a v1 mirror: the version and variant geotessera's Registry("v1") asks for.
    out = mosaic("manifest", "--input", root, "--dataset-version", "v1").stdout
    df = pq.read_table(root / "manifest.parquet").to_pandas()
    assert set(df["version"]) == {"1.0"} and set(df["variant"]) == {"vultr"}, out
    plan = mosaic("plan", "--input", root, "--dataset-version", "v1")
    assert "6 tiles in 1 years" in plan.stdout, plan.stdout


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    """TESSERA's side, read without credentials, and ours, written with them."""
    with seaweed(tmp_path_factory.mktemp("public"), bucket="tessera-n", anonymous=True) as public:
        with seaweed(tmp_path_factory.mktemp("ours")) as ours:
            yield public, ours


def test_from_tesseras_bucket_into_ours_and_from_a_mirror(bucket, two_servers, tmp_path):
    """Read the published tree from an anonymous server and write to another that needs
    credentials, each with its own --input-option / --out-option (the environment points at
    neither); the store equals the local build and the local-mirror build."""
    public, ours = two_servers
    for path in sorted(bucket["mirror"].rglob("*")):
        if path.is_file():
            public["fs"].put_file(str(path), f"tessera-n/{path.relative_to(bucket['mirror'])}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # A wrong endpoint and wrong keys in the environment: the options override them.
    env.update(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="wrong",
               AWS_SECRET_ACCESS_KEY="wrong", AWS_REGION="eu-west-1", AWS_ALLOW_HTTP="true")
    read = ["--input-option", f"aws_endpoint={public['endpoint']}",
            "--input-option", "aws_skip_signature=true", "--input-option", "aws_allow_http=true",
            "--input-option", "aws_region=us-east-1"]
    write = ["--out-option", f"aws_endpoint={ours['endpoint']}",
             "--out-option", f"aws_access_key_id={KEY}", "--out-option", f"aws_secret_access_key={SECRET}",
             "--out-option", "aws_allow_http=true", "--out-option", "aws_region=us-east-1"]
    url = "s3://tessera-n/tessera/npy/v1"
    proc = mosaic("build", "--input", url, "--landmasks", "s3://tessera-n/tessera/landmasks/v1/landmasks.parquet",
                  *read, "--out", "s3://mosaic/tessera.zarr", *write, "--band", BANDS,
                  env=env, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    store = tmp_path / "copy.zarr"
    ours["fs"].get("mosaic/tessera.zarr", str(store), recursive=True)
    assert shards(store) == shards(bucket["reference"])
    # verify reads both sides with their own settings too.
    store_options = [o.replace("--out-option", "--store-option") for o in write]
    proc = mosaic("verify", "--input", url, *read, "--landmasks",
                  "s3://tessera-n/tessera/landmasks/v1/landmasks.parquet",
                  "--store", "s3://mosaic/tessera.zarr", *store_options, "--band", "70-80",
                  "--sample", "200", env=env, cwd=REPO, check=False)
    assert "OK: the band matches its input" in proc.stdout, proc.stdout + proc.stderr
    # Without credentials for the output, the write is refused: they were used.
    proc = mosaic("build", "--input", url, *read, "--out", "s3://mosaic/refused.zarr",
                  "--out-option", f"aws_endpoint={ours['endpoint']}", "--out-option", "aws_allow_http=true",
                  "--out-option", "aws_skip_signature=true", "--band", "70-80",
                  env=env, cwd=REPO, check=False)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    # Landmasks apart from the tiles, on our server behind credentials: --landmasks-option
    # gives them their own settings; without it they are read with the input's (anonymous,
    # the other server) and the build stops naming them.
    for path in sorted(bucket["landmasks"].parent.rglob("*")):
        if path.is_file():
            ours["fs"].put_file(str(path), f"mosaic/masks/{path.name}")
    landmask_options = [o.replace("--out-option", "--landmasks-option") for o in write]
    proc = mosaic("build", "--input", url, *read, "--landmasks", "s3://mosaic/masks/landmasks.parquet",
                  *landmask_options, "--out", "s3://mosaic/apart.zarr", *write, "--band", BANDS,
                  env=env, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    apart = tmp_path / "apart.zarr"
    ours["fs"].get("mosaic/apart.zarr", str(apart), recursive=True)
    assert shards(apart) == shards(bucket["reference"])
    proc = mosaic("plan", "--input", url, *read, "--landmasks", "s3://mosaic/masks/landmasks.parquet",
                  env=env, cwd=REPO, check=False)
    assert proc.returncode != 0 and "masks/landmasks.parquet" in proc.stderr, proc.stdout + proc.stderr
    # An unknown key is an error naming it.
    proc = mosaic("plan", "--input", url, "--input-option", "aws_endpoit=x", env=env, check=False)
    assert proc.returncode == 2 and "aws_endpoit" in proc.stderr, proc.stderr
