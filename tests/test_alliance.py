from datetime import date

import pytest

from liaison.alliance import load_alliance_file, parse_alliance
from liaison.errors import ConfigError
from liaison.node import apply_alliance
from liaison.store.alliance import read_communities, read_partners
from tests.conftest import EXAMPLES

MINIMAL = """
[node]
country = "CAN"
name = "Test node"

[[partners]]
country = "usa"
name = "US"
clearance = "USA:TS"

[[communities]]
name = "FVEY"
members = ["CAN", "USA"]
"""


def test_demo_alliance_has_the_partners_and_communities_the_demo_needs():
    alliance = load_alliance_file(EXAMPLES / "alliance.toml")
    assert alliance.node.country == "CAN"
    codes = {p.country for p in alliance.partners}
    expected = {"USA", "GBR", "AUS", "NZL", "FRA", "DEU", "LVA", "ALB", "EST", "LTU", "POL", "TUR"}
    assert expected <= codes
    assert alliance.partner("RUS").status == "non-partner"
    by_name = {c.name: c for c in alliance.communities}
    assert {m.country for m in by_name["FVEY"].members} == {"CAN", "USA", "GBR", "AUS", "NZL"}
    assert "FRA" not in {m.country for m in by_name["FVEY"].members}
    assert by_name["eFP Latvia"].kind == "mission"
    assert "ALB" in {m.country for m in by_name["eFP Latvia"].members}


def test_codes_are_normalised_and_identities_derived():
    alliance = parse_alliance(MINIMAL)
    usa = alliance.partner("USA")
    assert usa is not None and usa.identity.startswith("identity--")
    assert str(usa.clearance) == "USA:TS"
    assert parse_alliance(MINIMAL).partner("USA").identity == usa.identity


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('country = "usa"', 'country = "XYZ"'), "not an ISO 3166 alpha-3"),
        (('clearance = "USA:TS"', 'clearance = "TS"'), "SCALE:LEVEL"),
        (('clearance = "USA:TS"\n', ""), "needs a clearance"),
        (('members = ["CAN", "USA"]', 'members = ["CAN", "FRA"]'), "neither the node nor"),
        (('name = "US"', 'name = "US"\ntrust = "absolute"'), "partners.0.trust"),
        (('name = "US"', 'name = "US"\ncolour = "red"'), "Extra inputs"),
        (("[node]", "[node"), "not valid TOML"),
    ],
)
def test_bad_alliance_files_name_the_problem(change, message):
    text = MINIMAL.replace(*change)
    with pytest.raises(ConfigError, match=message):
        parse_alliance(text)


def test_membership_dates():
    text = MINIMAL.replace(
        'members = ["CAN", "USA"]',
        'members = ["CAN", { country = "USA", joined = 2017-06-19, left = 2020-01-01 }]',
    )
    (fvey,) = parse_alliance(text).communities
    usa = next(m for m in fvey.members if m.country == "USA")
    assert not usa.active_on(date(2017, 6, 18))
    assert usa.active_on(date(2017, 6, 19))
    assert usa.active_on(date(2019, 12, 31))
    assert not usa.active_on(date(2020, 1, 1))
    with pytest.raises(ConfigError, match="left"):
        parse_alliance(text.replace("left = 2020-01-01", "left = 2000-01-01"))


def test_apply_stores_and_reloads_exactly_the_file(node, tmp_path):
    changes = apply_alliance(node, EXAMPLES / "alliance.toml")
    assert len(changes.added) == 13 and not changes.updated and not changes.removed
    expected = load_alliance_file(EXAMPLES / "alliance.toml")
    with node.engine.connect() as connection:
        assert read_partners(connection) == sorted(expected.partners, key=lambda p: p.country)
        stored = {c.name: c for c in read_communities(connection)}
    for community in expected.communities:
        assert set(stored[community.name].members) == set(community.members)

    smaller = tmp_path / "smaller.toml"
    smaller.write_text(MINIMAL.replace('clearance = "USA:TS"', 'clearance = "USA:S"'))
    changes = apply_alliance(node, smaller)
    assert changes.updated == ["USA"]
    assert "FRA" in changes.removed and not changes.added
    with node.engine.connect() as connection:
        assert [p.country for p in read_partners(connection)] == ["USA"]
        assert [c.name for c in read_communities(connection)] == ["FVEY"]


def test_alliance_of_another_node_is_refused(node, tmp_path):
    other = tmp_path / "other.toml"
    other.write_text(
        MINIMAL.replace('country = "CAN"', 'country = "GBR"').replace('"CAN",', '"GBR",')
    )
    with pytest.raises(ConfigError, match="node of GBR"):
        apply_alliance(node, other)
