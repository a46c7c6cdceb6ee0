"""A directory of plain-text documents to STIX reports (the foundation's simple step).

Each ``*.txt`` file becomes one report created by the node: the first non-empty line is its
name, the first date written in the text (else the file's modification time) is its
``published`` time, the whole text is its ``description``, and it is marked TLP:CLEAR. The
report's id is derived from the text, so loading the same documents twice adds nothing.
The open-source ingest pipeline replaces this module behind the same entry point,
``reports_from_directory``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liaison.errors import InputError
from liaison.markings.tlp import TLP_CLEAR
from liaison.stix.ids import derived_id

_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH = "(" + "|".join(m.capitalize() for m in _MONTHS) + ")"
_DATE_PATTERNS = (
    (re.compile(_MONTH + r"\.? (\d{1,2}),? (\d{4})"), ("month", "day", "year")),
    (re.compile(r"\b(\d{1,2}) " + _MONTH + r",? (\d{4})"), ("day", "month", "year")),
    (re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"), ("year", "month", "day")),
    (re.compile(r"\b(\d{2})/(\d{2})/(\d{4})\b"), ("month", "day", "year")),
)
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


def published_date(text: str) -> datetime | None:
    """The first date written in ``text`` (e.g. ``May 25, 2017`` or ``05/25/2017``)."""
    found: list[tuple[int, datetime]] = []
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            parts = dict(zip(order, match.groups(), strict=True))
            month = parts["month"]
            month_number = _MONTHS.index(month.lower()) + 1 if month.isalpha() else int(month)
            try:
                moment = datetime(int(parts["year"]), month_number, int(parts["day"]), tzinfo=UTC)
            except ValueError:
                continue
            found.append((match.start(), moment))
            break
    return min(found)[1] if found else None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


_BOILERPLATE = ("click ", "read ", "story continues", "advertisement", "main ", "skip to", "share ")


def headline(text: str) -> str:
    """The headline: the first short line near the top that is not page furniture, a date
    or a sentence; else the first sentence."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[:10]:
        words = line.split()
        if (
            4 <= len(words) <= 25
            and not line.endswith(".")
            and not line.lower().startswith(_BOILERPLATE)
            and published_date(line) is None
        ):
            return line
    first = re.split(r"(?<=[.!?])\s+", " ".join(lines), maxsplit=1)[0]
    return first[:300]


def report_from_text(text: str, source: str, fallback: datetime, author: str) -> dict[str, Any]:
    """One STIX report of ``text`` created by ``author``; InputError if there is no text."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError(f"{source}: the document has no text")
    published = _stamp(published_date(text) or fallback)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": derived_id("report", f"document:{digest}"),
        "created_by_ref": author,
        "created": published,
        "modified": published,
        "name": headline(text),
        "description": text.strip(),
        "published": published,
        # A report must reference something; until the ingest pipeline extracts entities,
        # it references its author.
        "object_refs": [author],
        "external_references": [
            {"source_name": "open-source document", "description": source, "external_id": digest}
        ],
        "object_marking_refs": [TLP_CLEAR],
    }


def reports_from_directory(directory: Path, author: str) -> list[dict[str, Any]]:
    """A report for every ``*.txt`` document in ``directory``, in name order."""
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of documents")
    reports = []
    for path in sorted(directory.glob("*.txt")):
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise InputError(f"{path}: larger than {MAX_DOCUMENT_BYTES:,} bytes")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        reports.append(report_from_text(text, path.name, modified, author))
    if not reports:
        raise InputError(f"{directory} holds no *.txt documents")
    return reports
