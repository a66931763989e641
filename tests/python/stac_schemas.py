"""Offline JSON schemas for stac-validator, so that STAC validation needs no network.

- STAC 1.1.0 core (catalog, collection, item and their parts) and GeoJSON: the copies that the
  `pystac-core` package ships as package data.
- The datacube v2.2.0 and projection v2.0.0 extension schemas: the HTTP recordings ("cassettes")
  in the test suites of the `pystac-ext-datacube` and `pystac-ext-projection` source
  distributions, which scripts/setup.sh downloads with pip (versions pinned in
  schema-sources.txt) into VENV/stac-schemas-src.

`schema_map(folder)` writes the schemas into `folder` and returns {schema URL: local file}, the
mapping stac-validator's `schema_map` option takes.
"""

import importlib.resources
import json
import os
import sys
import tarfile
from pathlib import Path

import yaml

STAC = "https://schemas.stacspec.org/v1.1.0"
DATACUBE = "https://stac-extensions.github.io/datacube/v2.2.0/schema.json"
PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"

CORE = {
    f"{STAC}/catalog-spec/json-schema/catalog.json": "stac-spec/v1.1.0/catalog.json",
    f"{STAC}/collection-spec/json-schema/collection.json": "stac-spec/v1.1.0/collection.json",
    **{
        f"{STAC}/item-spec/json-schema/{name}.json": f"stac-spec/v1.1.0/{name}.json"
        for name in ["item", "basics", "bands", "common", "data-values", "datetime",
                     "instrument", "licensing", "provider"]
    },
    "https://geojson.org/schema/Feature.json": "geojson/Feature.json",
    "https://geojson.org/schema/Geometry.json": "geojson/Geometry.json",
}


def sdist_folder():
    """Where scripts/setup.sh puts the extension sdists (override: STAC_SCHEMA_SOURCES)."""
    return Path(os.environ.get("STAC_SCHEMA_SOURCES", Path(sys.prefix) / "stac-schemas-src"))


def recorded_responses(folder):
    """{URL: body} of every recorded HTTP response in the cassettes of the sdists in folder."""
    found = {}
    redirects = {}
    sdists = sorted(Path(folder).glob("*.tar.gz"))
    if not sdists:
        raise FileNotFoundError(
            f"no schema sources in {folder}: run scripts/setup.sh (it pip-downloads the "
            "sdists listed in tests/python/schema-sources.txt)")
    for sdist in sdists:
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                if "/cassettes/" not in member.name or not member.name.endswith(".yaml"):
                    continue
                doc = yaml.safe_load(tar.extractfile(member))
                for interaction in doc.get("interactions", []):
                    response = interaction["response"]
                    body = response["body"].get("string")
                    if body and response["status"]["code"] == 200:
                        found.setdefault(interaction["request"]["uri"], body)
                    elif response["status"]["code"] in (301, 302, 307, 308):
                        redirects[interaction["request"]["uri"]] = response["headers"]["Location"][0]
    for url, target in redirects.items():
        if target in found:
            found.setdefault(url, found[target])
    return found


def schema_map(folder):
    """Write the schemas into folder; return {URL: local path} for stac-validator."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mapping = {}
    package = importlib.resources.files("pystac.validation.jsonschemas")
    for url, rel in CORE.items():
        target = folder / "core" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(package.joinpath(rel).read_text())
        mapping[url] = str(target)
    recorded = recorded_responses(sdist_folder())
    for url in [DATACUBE, PROJECTION]:
        if url not in recorded:
            raise KeyError(f"{url} is not recorded in the sdists in {sdist_folder()}")
    # Every recorded schema, under its URL (the extensions refer to PROJJSON's schema).
    for k, (url, body) in enumerate(sorted(recorded.items())):
        schema = json.loads(body)
        if url in (DATACUBE, PROJECTION) and schema.get("$id") != url:
            raise ValueError(f"the recording of {url} has $id {schema.get('$id')}")
        target = folder / "recorded" / f"{k}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema))
        mapping[url] = str(target)
    return mapping
