"""Species lists from the meta-model and from files."""

from __future__ import annotations

import pytest

from edgebird.species import (
    Location,
    occurrence,
    read_species_list,
    species_at,
    write_species_list,
)


def test_berlin_in_may_has_blackbirds_not_penguins():
    got = dict(species_at(Location(52.5, 13.4, week=20)))
    assert "Turdus merula_Eurasian Blackbird" in got
    assert not any(label.startswith("Aptenodytes") for label in got)
    assert all(score >= 0.03 for score in got.values())


def test_threshold_sorting_and_year_round():
    loc = Location(52.5, 13.4, week=20, threshold=0.03)
    freq = species_at(loc)
    assert [s for _, s in freq] == sorted((s for _, s in freq), reverse=True)
    alpha = species_at(loc, sort="alpha")
    assert [lab for lab, _ in alpha] == sorted(lab for lab, _ in freq)
    assert len(species_at(Location(52.5, 13.4, week=20, threshold=0.5))) < len(freq)
    assert len(occurrence(52.5, 13.4, -1)) == 6522


@pytest.mark.parametrize("kwargs", [{"lat": 91, "lon": 0}, {"lat": 0, "lon": 181},
                                    {"lat": 0, "lon": 0, "week": 49},
                                    {"lat": 0, "lon": 0, "week": 0},
                                    {"lat": 0, "lon": 0, "threshold": 1.0}])
def test_bad_locations_are_refused(kwargs):
    with pytest.raises(ValueError):
        Location(**kwargs)


def test_list_files_are_validated(tmp_path):
    p = write_species_list(tmp_path, ["Turdus merula_Eurasian Blackbird",
                                      "Parus major_Great Tit"])
    assert p.name == "species_list.txt"
    p.write_text(p.read_text() + "\n# my own\nTurdus merula_Blackbird\n")
    good, unknown = read_species_list(tmp_path)
    assert good == ["Turdus merula_Eurasian Blackbird", "Parus major_Great Tit"]
    assert unknown == ["Turdus merula_Blackbird"]
    good, unknown = read_species_list(p, known=["Mine_Mine"])
    assert good == [] and len(unknown) == 3
    with pytest.raises(ValueError, match="not found"):
        read_species_list(tmp_path / "nope.txt")
