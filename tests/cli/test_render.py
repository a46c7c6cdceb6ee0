"""What people read: tables that keep their content at 80 columns and when piped, markings
by name, `show` as text, help without Python type labels."""

import json
import re

import pytest

from liaison.cli import render
from liaison.markings.handling import marking_definition
from liaison.markings.names import marking_name
from liaison.markings.tlp import TLP_AMBER
from tests.conftest import EXAMPLES

FVEY = "CAN:SECRET REL TO FVEY"


@pytest.fixture
def width(monkeypatch):
    """The CLI printed at ``n`` columns, stdout not a terminal (as when piped)."""

    def set_width(n: int) -> None:
        monkeypatch.setenv("COLUMNS", str(n))
        # rich reads COLUMNS when the console is made, if it was set then; else at each print.
        monkeypatch.setattr(render.console, "_width", None)

    return set_width


def words(text: str) -> str:
    return " ".join(text.split())


def table_rows(output: str, title: str, stop: str = "\0") -> list[dict[str, str]]:
    """The rows of the table titled ``title`` (up to the line starting with ``stop``): each
    column's lines joined, as a person reads them. Columns start where their headings do."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.rstrip() == title)
    header = lines[start + 1]
    assert set(lines[start + 2].strip()) == {"─"}, lines[start + 2]
    heads = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    rows: list[dict[str, list[str]]] = []
    for line in lines[start + 3 :]:
        if line.startswith(stop):
            break
        cells = [
            line[begin : heads[n + 1][1] if n + 1 < len(heads) else None].strip()
            for n, (_, begin) in enumerate(heads)
        ]
        if cells[0]:
            rows.append({name: [] for name, _ in heads})
        for (name, _), cell in zip(heads, cells, strict=True):
            if cell:
                rows[-1][name].append(cell)
    return [{name: " ".join(parts) for name, parts in row.items()} for row in rows]


def assert_fits(output: str, columns: int, abbreviated: bool = False) -> None:
    """Every line within ``columns``, no column squeezed to nothing, nothing cropped ("…"
    only where the command abbreviates on purpose, as the ledger's hashes)."""
    assert all(len(line.rstrip()) <= columns for line in output.splitlines())
    assert "┳" not in output and (abbreviated or "…" not in output)


def json_of(result):
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def report(run, prefix: str) -> dict:
    reports = json_of(run("list", "--type", "report", "--json"))
    return next(r for r in reports if r["name"].startswith(prefix))


def test_at_80_columns_and_piped_nothing_is_cut(demo, width):
    objects = json_of(demo("list", "--json"))
    width(80)

    listed = demo("list")
    assert listed.exit_code == 0
    assert_fits(listed.stdout, 80)
    rows = table_rows(listed.stdout, "Objects", stop="Ids shortened")
    assert len(rows) == len(objects)
    for obj, row in zip(objects, rows, strict=True):
        # A short id, but whole enough to tell: its type, then the start of its uuid.
        assert row["id"].startswith(obj["type"] + "--") and obj["id"].startswith(row["id"])
        assert row["name"] == words(str(obj.get("name", "")))
        assert row["modified"] == (obj.get("modified") or obj["created"])[:10]
    assert len({row["id"] for row in rows}) == len(rows)
    assert "marking-definition--" not in " ".join(row["markings"] for row in rows)
    fvey = report(demo, "Foreign fighter travel")
    assert next(r for r in rows if fvey["id"].startswith(r["id"]))["markings"] == FVEY

    imported = demo("import", str(EXAMPLES / "intelligence.json"))
    assert_fits(imported.stdout, 80)
    statuses = table_rows(imported.stdout, "Import", stop="Ids shortened")
    assert statuses and {row["status"] for row in statuses} == {"present"}
    assert all(len(row["version"]) == 24 for row in statuses)

    summit = report(demo, "NATO summit")
    expected = json_of(demo("matrix", summit["id"], "--json"))
    matrix = demo("matrix", summit["id"])
    assert_fits(matrix.stdout, 80)
    shown = table_rows(matrix.stdout, f"Release matrix of {summit['id']}")
    assert [row["partner"] for row in shown] == [row["partner"] for row in expected]
    for row, decided in zip(shown, expected, strict=True):
        assert row["decision"] == decided["decision"]
        assert row["reasons"] == words(" ".join(r["text"] for r in decided["reasons"]))
    fra = next(row for row in shown if row["partner"] == "FRA")
    assert "description: REL TO FVEY: FRA is not a member of FVEY" in fra["reasons"]

    explained = demo("explain", summit["id"], "--partner", "ALB")
    assert_fits(explained.stdout, 80)
    reasons = table_rows(explained.stdout, "Reasons", stop="Cut fields")
    assert "description: SECRET (CAN) exceeds ALB clearance NATO CONFIDENTIAL" in [
        row["reason"] for row in reasons
    ]


def test_show_is_text_for_people_and_json_with_json(demo, width):
    width(80)
    fvey = report(demo, "Foreign fighter travel")
    result = demo("show", fvey["id"])
    assert result.exit_code == 0, result.stderr
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)
    assert_fits(result.stdout, 80)
    text = words(result.stdout)
    assert fvey["id"] in text and FVEY in text
    assert words(fvey["name"]) in text and words(fvey["description"]) in text
    assert "{" not in result.stdout.splitlines()[0]
    # JSON is unchanged: ids stay ids.
    shown = json_of(demo("show", fvey["id"], "--json"))
    assert shown == fvey and shown["object_marking_refs"][0].startswith("marking-definition--")
    summit = report(demo, "NATO summit")
    assert f"TLP:GREEN; description: {FVEY}" in words(demo("show", summit["id"]).stdout)


def test_ledger_and_policy_log_keep_their_content_at_80_columns(demo, width):
    summit = report(demo, "NATO summit")
    assert demo("disclose", summit["id"], "--partner", "FRA", "-o", "fra.json").exit_code == 0
    entries = json_of(demo("ledger", "show", "--json"))
    width(80)
    shown = demo("ledger", "show")
    assert_fits(shown.stdout, 80, abbreviated=True)
    rows = table_rows(shown.stdout, "Ledger")
    assert [row["seq"] for row in rows] == [str(e["seq"]) for e in entries]
    disclosure = next(row for row in rows if row["kind"] == "disclosure")
    assert disclosure["partner"] == "FRA"
    assert summit["id"] in disclosure["what"].replace(" ", "")
    assert_fits(demo("policy", "log").stdout, 80)
    for command in ("partners", "communities", "demo"):
        assert_fits(demo(command).stdout, 80)


def test_at_120_columns_ids_are_whole(demo, width):
    objects = json_of(demo("list", "--json"))
    width(120)
    listed = demo("list")
    assert_fits(listed.stdout, 120)
    assert "Ids shortened" not in listed.stdout
    rows = table_rows(listed.stdout, "Objects", stop=f"{len(objects)} objects")
    assert [row["id"] for row in rows] == [o["id"] for o in objects]
    assert [row["name"] for row in rows] == [words(str(o.get("name", ""))) for o in objects]
    summit = report(demo, "NATO summit")
    matrix = demo("matrix", summit["id"])
    assert_fits(matrix.stdout, 120)
    assert "FRA is not a member of FVEY" in matrix.stdout  # one line at this width


@pytest.mark.parametrize("command", [["list"], ["explain"], ["withdraw"], ["ledger", "show"]])
def test_help_labels_values_not_python_types(run, command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert not re.search(r"<(bool|str|int|float|list\[)", result.stdout)
    json_line = next(line for line in result.stdout.splitlines() if "--json" in line)
    assert re.search(r"--json\s+Print JSON only", json_line)


def test_short_ids_tell_ids_apart():
    ids = [
        "report--70d09b66-ce21-5ba5-b098-4dced41c5acf",
        "report--70d09b66-ffff-5ba5-b098-4dced41c5acf",
        "identity--b7d959c1-c1e3-567a-b3ff-6df84c24e039",
    ]
    short = render.short_ids(ids)
    assert short[ids[2]] == "identity--b7d959c1"
    assert short[ids[0]] != short[ids[1]] and ids[0].startswith(short[ids[0]])


def test_marking_names():
    assert marking_name(TLP_AMBER) == "TLP:AMBER"
    definition = marking_definition("identity--x", "CAN:SECRET", ["FVEY"], ["CAN EYES ONLY"])
    assert marking_name(definition["id"], definition) == "CAN:SECRET REL TO FVEY CAN EYES ONLY"
    unknown = "marking-definition--00000000-0000-4000-8000-000000000000"
    assert marking_name(unknown) == unknown
    statement = {"definition_type": "statement", "definition": {"statement": "Copyright X"}}
    assert marking_name(unknown, statement) == "Copyright X"
