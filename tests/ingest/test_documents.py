from datetime import UTC, datetime

import pytest

from liaison.errors import InputError
from liaison.ingest.documents import headline, published_date, reports_from_directory
from liaison.markings.tlp import TLP_CLEAR
from liaison.stix.validate import validation_errors
from tests.conftest import EXAMPLES

AUTHOR = "identity--11111111-1111-4111-8111-111111111111"


def test_example_documents_become_valid_reports():
    reports = reports_from_directory(EXAMPLES / "documents", AUTHOR)
    assert len(reports) == 6
    for report in reports:
        assert validation_errors(report) == []
        assert report["created_by_ref"] == AUTHOR
        assert report["object_marking_refs"] == [TLP_CLEAR]
    assert reports[0]["published"] == "2017-05-25T00:00:00.000Z"
    assert "Trudeau" in reports[0]["name"]


def test_report_ids_are_stable():
    first = reports_from_directory(EXAMPLES / "documents", AUTHOR)
    second = reports_from_directory(EXAMPLES / "documents", AUTHOR)
    assert [r["id"] for r in first] == [r["id"] for r in second]


def test_seed_documents_become_five_reports_with_their_headlines(seeds):
    reports = reports_from_directory(seeds, AUTHOR)
    assert len(reports) == 5
    assert all(validation_errors(r) == [] for r in reports)
    names = [r["name"] for r in reports]
    assert names[0] == "Justin Trudeau says Canada will continue to share intelligence with allies"
    assert names[1].startswith("Justin Trudeau: Sharing Intelligence With Allies")
    assert names[4].startswith("Prime Minister Justin Trudeau meets with the NATO Secretary")
    assert reports[1]["published"].startswith("2017-05-25")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BRUSSELS, May 25, 2017 — text", datetime(2017, 5, 25, tzinfo=UTC)),
        ("05/25/2017 11:05 EDT", datetime(2017, 5, 25, tzinfo=UTC)),
        ("on 9 July 2018 in Riga", datetime(2018, 7, 9, tzinfo=UTC)),
        ("dated 2021-02-17, then May 25, 2017", datetime(2021, 2, 17, tzinfo=UTC)),
        ("from July 11 to 12", None),
        ("February 30, 2020", None),
    ],
)
def test_published_date(text, expected):
    assert published_date(text) == expected


def test_headline_skips_page_furniture():
    assert headline("Main Container\nPM Crest\nLeaders meet at NATO in Brussels\nBody.") == (
        "Leaders meet at NATO in Brussels"
    )
    assert headline("One long sentence only. And another.") == "One long sentence only."


def test_empty_or_missing_directories_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"no \*\.txt"):
        reports_from_directory(tmp_path, AUTHOR)
    with pytest.raises(InputError, match="not a directory"):
        reports_from_directory(tmp_path / "nope", AUTHOR)
    (tmp_path / "blank.txt").write_text("  \n\n")
    with pytest.raises(InputError, match="no text"):
        reports_from_directory(tmp_path, AUTHOR)
    (tmp_path / "blank.txt").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(InputError, match="not UTF-8"):
        reports_from_directory(tmp_path, AUTHOR)
