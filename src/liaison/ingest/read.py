"""Reading open-source documents: plain text, HTML pages and RSS/Atom feeds, from files or
directories, each turned into clean text with its headline, date and source.

Main-text extraction from HTML is trafilatura's, feeds are feedparser's, dates written in
text are dateparser's. A file that cannot be read (binary, empty, too large, HTML without
text, a broken feed) yields a :class:`Failure` with one line of reason, never an exception:
one bad file in a directory does not stop the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from liaison.ingest.clean import clean_text

# trafilatura, feedparser, lxml and dateparser are imported where they are used: reading
# plain text (a leak typed out, say) needs none of them, and together they take half a second.

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
MIN_HTML_WORDS = 8
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
FEED_SUFFIXES = {".rss", ".atom", ".xml"}
_DATE_SETTINGS = {
    "RETURN_AS_TIMEZONE_AWARE": True,
    "TIMEZONE": "UTC",
    "PREFER_DAY_OF_MONTH": "first",
}
# Dates as news pages write them near the top ("May 25, 2017", "05/25/2017 11:05 EDT").
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?"
_DATE_IN_TEXT = re.compile(
    rf"\b{_MONTH} \d{{1,2}},? \d{{4}}\b|\b\d{{1,2}} {_MONTH},? \d{{4}}\b"
    r"|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b"
)
_FURNITURE = re.compile(
    r"^(click to play|main container|main content|skip to|advertisement|share this|"
    r"read more|read the original|above:|story continues|prime minister crest)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Document:
    """One document, ready for entity extraction: its clean text and what is known of it."""

    origin: str  # the file (and the feed entry) it came from
    source: str  # who published it: a site or feed name, for the Admiralty reliability
    headline: str
    text: str
    published: datetime | None  # only a date the document or its feed states
    url: str | None = None
    modified: datetime | None = None  # the file's, for a report date when none is stated


@dataclass(frozen=True)
class Failure:
    origin: str
    error: str


def read_paths(paths: Iterable[Path], source: str | None = None) -> Iterator[Document | Failure]:
    """Every document under ``paths`` (files, or directories read in name order, not
    recursively into hidden entries). ``source`` names the publisher of plain-text files,
    which carry no such metadata; by default each file is its own source."""
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.iterdir() if not p.name.startswith(".")):
                if child.is_file():
                    yield from read_file(child, source)
        elif path.exists():
            yield from read_file(path, source)
        else:
            yield Failure(str(path), "no such file or directory")


def read_file(path: Path, source: str | None = None) -> Iterator[Document | Failure]:
    origin = str(path)
    try:
        stat = path.stat()
        if stat.st_size > MAX_DOCUMENT_BYTES:
            yield Failure(origin, f"larger than {MAX_DOCUMENT_BYTES:,} bytes")
            return
        data = path.read_bytes()
    except OSError as error:
        yield Failure(origin, f"cannot read: {error.strerror}")
        return
    if not data.strip():
        yield Failure(origin, "empty")
        return
    if b"\x00" in data[:8192]:
        yield Failure(origin, "a binary file, not a document")
        return
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield Failure(origin, "not UTF-8 text")
        return
    kind = _kind(path, content)
    if kind == "feed":
        yield from read_feed(origin, content)
    elif kind == "html":
        yield read_html(origin, content)
    else:
        modified = datetime.fromtimestamp(stat.st_mtime, tz=UTC)
        yield read_text(origin, content, source or path.stem, modified)


def _kind(path: Path, content: str) -> str:
    suffix = path.suffix.lower()
    head = content[:1000].lstrip().lower()
    if suffix in FEED_SUFFIXES or (
        head.startswith("<?xml") and ("<rss" in head or "<feed" in head)
    ):
        return "feed"
    if suffix in HTML_SUFFIXES or head.startswith(("<!doctype html", "<html")):
        return "html"
    return "text"


def read_text(
    origin: str, content: str, source: str, modified: datetime | None = None
) -> Document | Failure:
    # ``modified`` comes from the stat read_file already made: a second stat could fail,
    # and reading never raises.
    text = clean_text(content)
    if not text:
        return Failure(origin, "no text")
    return Document(origin, source, headline(text), text, date_in(text), modified=modified)


def read_html(origin: str, content: str, url: str | None = None) -> Document | Failure:
    import trafilatura

    extracted = trafilatura.extract(
        content, include_comments=False, include_tables=False, favor_precision=True
    )
    text = clean_text(extracted or "")
    # A page of menus and footers can still yield a word or two: that is not an article.
    if len(text.split()) < MIN_HTML_WORDS:
        return Failure(origin, "HTML without main text")
    metadata = trafilatura.extract_metadata(content)
    title = (metadata.title if metadata else None) or headline(text)
    published = _parse_date(metadata.date) if metadata and metadata.date else date_in(text)
    page = url or (metadata.url if metadata else None)
    source = (metadata.sitename if metadata else None) or _domain(page) or Path(origin).stem
    return Document(origin, source, title.strip(), text, published, page)


def read_feed(origin: str, content: str) -> Iterator[Document | Failure]:
    import feedparser

    feed = feedparser.parse(content)
    readable = [e for e in feed.entries if e.get("title") or e.get("summary") or e.get("content")]
    if feed.bozo and not readable:
        yield Failure(origin, f"not a readable feed: {feed.get('bozo_exception', 'malformed')}")
        return
    if not feed.entries:
        yield Failure(origin, "a feed without entries")
        return
    name = feed.feed.get("title") or _domain(feed.feed.get("link")) or Path(origin).stem
    for number, entry in enumerate(feed.entries):
        where = f"{origin}#{entry.get('id') or entry.get('link') or number}"
        parts = [c.get("value", "") for c in entry.get("content", [])] or [entry.get("summary", "")]
        text = clean_text("\n\n".join(_html_text(p) for p in parts if p))
        if not text:
            yield Failure(where, "a feed entry without text")
            continue
        title = entry.get("title") or headline(text)
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        published = datetime(*stamp[:6], tzinfo=UTC) if stamp else date_in(text)
        yield Document(where, name, title.strip(), text, published, entry.get("link"))


def _html_text(fragment: str) -> str:
    """The text of a feed entry's HTML fragment (feedparser has sanitized it)."""
    if "<" not in fragment:
        return fragment
    from lxml import html as lxml_html

    try:
        root = lxml_html.fromstring(fragment)
    except (ValueError, lxml_html.etree.ParserError):
        return ""
    for block in root.iter("p", "br", "div", "li"):
        block.tail = "\n" + (block.tail or "")
    return root.text_content()


def _domain(url: str | None) -> str | None:
    if not url:
        return None
    host = urlparse(url).hostname or ""
    return host.removeprefix("www.") or None


def _parse_date(value: str) -> datetime | None:
    import dateparser

    moment = dateparser.parse(value, settings=_DATE_SETTINGS)
    return moment.astimezone(UTC) if moment else None


def date_in(text: str) -> datetime | None:
    """The first date written near the top of ``text``: the usual forms are read exactly,
    anything else by dateparser (about a millisecond a call)."""
    for match in _DATE_IN_TEXT.finditer(text[:3000]):
        found = match.group(0)
        moment = _exact_date(found) or _parse_date(found)
        if moment is not None:
            return moment
    return None


_EXACT_FORMATS = (
    "%B %d, %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%b. %d, %Y",
    "%d %B %Y",
    "%Y-%m-%d",
    "%m/%d/%Y",
)


def _exact_date(found: str) -> datetime | None:
    for form in _EXACT_FORMATS:
        try:
            return datetime.strptime(found, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def headline(text: str) -> str:
    """The headline: the first short line near the top that is not page furniture, a date or
    a sentence; else the first sentence."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[:10]:
        words = line.split()
        if (
            4 <= len(words) <= 25
            and not line.endswith(".")
            and not _FURNITURE.match(line)
            and _DATE_IN_TEXT.match(line) is None
        ):
            return line
    first = re.split(r"(?<=[.!?])\s+", " ".join(lines), maxsplit=1)[0]
    return first[:300]
