"""What a click on the map costs (issue 29): the page's similarity view and inspector, read by
the page from the store over loopback HTTP (tests/python/browser.py's Server, with ranges) in
headless Chromium, at three zooms. Prints per zoom the level used, the chunks, requests and
bytes read and the seconds from the click to the drawn view: cold (a fresh page with the HTTP
cache disabled; every store read of the click counted: band metadata, the inspector's shard
indexes and inner chunks, the level's chunks) and warm (the same click again in that page: chunks
cached in the page), the median of ROUNDS.

Input: a store and the catalog beside it (`mosaic stac --store STORE --out CATALOG`, CATALOG's
parent the common folder served), e.g. the test sample: synthetic content, not real.

Usage: .venv/bin/python scripts/bench_map_similarity.py STORE CATALOG [--rounds R]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
from browser import Browser, Server  # noqa: E402

# (zoom, lat, lon of the view's centre, lat, lon of the click): the test sample's cells at 70N 6E.
VIEWS = [(11, 70.045, 6.08, 70.043, 5.961), (8, 70.05, 6.1, 70.043, 5.961),
         (6, 70.0, 6.0, 70.043, 5.961)]


def click(browser, lat, lon):
    """A real click; returns (seconds from the click event to the similarity drawn and the next
    frame painted, measured in the page; the similarity's levels, chunks, requests, bytes)."""
    p = browser.evaluate(f"(p => ({{x: Math.round(p.x), y: Math.round(p.y)}}))"
                         f"(mosaicMap.map.latLngToContainerPoint([{lat}, {lon}]))")
    browser.evaluate("mosaicMap.map.once('click', () => { window.clickedAt = performance.now(); }); 0")
    before = browser.evaluate("mosaicMap.stats()")
    for kind in ["mousePressed", "mouseReleased"]:
        browser.call("Input.dispatchMouseEvent", type=kind, x=p["x"], y=p["y"], button="left",
                     clickCount=1)
    seconds = browser.evaluate(
        "Promise.all([mosaicMap.lastClick, mosaicMap.lastSimilarity])"
        ".then(() => new Promise(r => requestAnimationFrame(() => r())))"
        ".then(() => (performance.now() - window.clickedAt) / 1000)")
    s = browser.evaluate("(s => ({levels: s.levels, chunks: s.chunks.length}))(mosaicMap.similarity())")
    after = browser.evaluate("mosaicMap.stats()")
    s["requests"] = after["requests"] - before["requests"]
    s["bytes"] = after["bytes"] - before["bytes"]
    return seconds, s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("store", type=Path)
    ap.add_argument("catalog", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    print(f"store {a.store}, catalog {a.catalog}; loopback HTTP, headless Chromium, {a.rounds} rounds")
    print("zoom level chunks | cold: requests MB s | warm: s   (s = click to drawn view)")
    with Server(a.catalog.parent) as server:
        for zoom, clat, clon, lat, lon in VIEWS:
            cold, warm, info = [], [], None
            for _ in range(a.rounds):
                with Browser(1100, 900) as browser:
                    browser.call("Network.enable")
                    browser.call("Network.setCacheDisabled", cacheDisabled=True)
                    url = f"{server.url}/{a.catalog.name}/index.html#{zoom}/{clat}/{clon}/2024"
                    assert browser.goto(url) == "1"
                    seconds, info = click(browser, lat, lon)
                    cold.append(seconds)
                    warm.append(click(browser, lat, lon)[0])
                    assert browser.errors == [], browser.errors
            print(f"{zoom:4} {','.join(map(str, info['levels'])):5} {info['chunks']:6} | "
                  f"{info['requests']:4} {info['bytes'] / 1e6:6.2f} {statistics.median(cold):5.2f} | "
                  f"{statistics.median(warm):5.2f}")


if __name__ == "__main__":
    main()
