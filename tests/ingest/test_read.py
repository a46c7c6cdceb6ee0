"""Reading documents: text, HTML and feeds; artifacts stripped; bad files reported, not fatal."""

from datetime import UTC, datetime

import pytest

from liaison.errors import ConfigError
from liaison.ingest.clean import clean_text
from liaison.ingest.read import MAX_DOCUMENT_BYTES, Document, Failure, read_paths
from liaison.ingest.sources import SourceRatings, load_sources
from tests.conftest import EXAMPLES, TEXTS

ARTICLE = """<!doctype html>
<html><head><title>Canada to lead NATO battlegroup in Latvia for four more years</title>
<meta property="og:site_name" content="CBC News">
<meta property="article:published_time" content="2018-07-10T09:00:00Z">
</head><body><nav>Home | World | Politics</nav>
<article><h1>Canada to lead NATO battlegroup in Latvia for four more years</h1>
<p>Prime Minister Justin Trudeau announced in Riga that Canada will extend its leadership of
the NATO battlegroup in Latvia until 2023, a mission of about 450 Canadian soldiers.</p>
<p>Latvian Prime Minister Maris Kucinskis welcomed the decision, saying the presence of allied
troops deters Russian aggression in the Baltic region.</p>
<p>The extension will be discussed further at the NATO summit in Brussels this week, where
allies are expected to face pressure over defence spending.</p>
</article><footer>Copyright CBC</footer></body></html>
"""

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Allied Affairs Wire</title>
<link>https://wire.example.org/</link>
<item><title>Five Eyes partners review intelligence sharing</title>
<link>https://wire.example.org/fvey-review</link>
<pubDate>Thu, 25 May 2017 11:05:00 GMT</pubDate>
<description>&lt;p&gt;Officials from the Five Eyes countries met in Ottawa to review how
intelligence is shared after the Manchester leak.&lt;/p&gt;</description></item>
<item><title>Empty item</title><description></description></item>
</channel></rss>
"""


def read_all(*paths, source=None):
    return list(read_paths(paths, source))


def test_plain_text_gets_headline_date_and_each_file_is_its_own_source():
    (doc, *_) = read_all(EXAMPLES / "documents" / "01-brussels-summit-sharing.txt")
    assert isinstance(doc, Document)
    assert doc.headline.startswith("Trudeau says Canada will keep exchanging intelligence")
    assert doc.published == datetime(2017, 5, 25, tzinfo=UTC)
    assert doc.source == "01-brussels-summit-sharing"
    (named,) = read_all(EXAMPLES / "documents" / "02-manchester-leak.txt", source="Wire")
    assert named.source == "Wire"


def test_html_main_text_title_site_and_date(tmp_path):
    page = tmp_path / "latvia.html"
    page.write_text(ARTICLE)
    (doc,) = read_all(page)
    assert doc.headline == "Canada to lead NATO battlegroup in Latvia for four more years"
    assert doc.source == "CBC News"
    assert doc.published == datetime(2018, 7, 10, tzinfo=UTC)
    assert "Kucinskis welcomed the decision" in doc.text
    assert "Home | World" not in doc.text and "Copyright" not in doc.text


def test_feed_entries_become_documents_and_an_empty_entry_fails(tmp_path):
    feed = tmp_path / "wire.rss"
    feed.write_text(FEED)
    found = read_all(feed)
    docs = [f for f in found if isinstance(f, Document)]
    failures = [f for f in found if isinstance(f, Failure)]
    assert len(docs) == 1 and len(failures) == 1
    (doc,) = docs
    assert doc.source == "Allied Affairs Wire"
    assert doc.url == "https://wire.example.org/fvey-review"
    assert doc.published == datetime(2017, 5, 25, 11, 5, tzinfo=UTC)
    assert doc.text.startswith("Officials from the Five Eyes countries met in Ottawa")
    assert "<p>" not in doc.text
    assert failures[0].error == "a feed entry without text"


def test_a_mixed_directory_reports_each_bad_file_and_reads_the_rest(tmp_path):
    (tmp_path / "good.txt").write_text(
        "Allies met in Brussels on May 25, 2017 to share intelligence."
    )
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (tmp_path / "latin1.txt").write_bytes("d\xe9fense".encode("latin-1"))
    (tmp_path / "blank.html").write_text("<html><body><nav>menu</nav></body></html>")
    (tmp_path / "broken.rss").write_text("<?xml version='1.0'?><rss><channel><item><title>")
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(MAX_DOCUMENT_BYTES + 1)
    found = {f.origin.rsplit("/", 1)[-1]: f for f in read_all(tmp_path)}
    assert isinstance(found["good.txt"], Document)
    errors = {name: f.error for name, f in found.items() if isinstance(f, Failure)}
    assert errors["empty.txt"] == "empty"
    assert errors["binary.bin"] == "a binary file, not a document"
    assert errors["latin1.txt"] == "not UTF-8 text"
    assert errors["blank.html"] == "HTML without main text"
    assert errors["broken.rss"].startswith(("not a readable feed", "a feed without entries"))
    assert errors["huge.txt"].startswith("larger than")
    assert read_all(tmp_path / "missing.txt")[0].error == "no such file or directory"


def test_clean_text_strips_artifacts_and_keeps_the_story():
    raw = (
        "Click to play video: 'Trudeau at NATO' Trudeau at NATO\n"
        "ABOVE: Trudeau at NATO – May 25, 2017\n\n\n"
        "A message of solidarity [19659007] At the same time, Canada stays.\n"
        "The climate. ] Trudeau will speak.\n"
        "Story continues below advertisement\n"
        "READ MORE: Another story\n"
        "Canada costs 134 million llars a year\n"
        "Canada costs 134 million llars a year\n"
    )
    assert clean_text(raw) == (
        "A message of solidarity At the same time, Canada stays.\n"
        "The climate. Trudeau will speak.\n"
        "Canada costs 134 million llars a year"
    )


def test_text_002_loses_its_translation_markers():
    (doc,) = read_all(next(TEXTS.glob("002_*.txt")))
    assert "[1965" not in doc.text and ". ]" not in doc.text
    assert "Latvia" in doc.headline


def test_source_ratings_cover_subdomains_and_default_to_f(tmp_path):
    ratings = SourceRatings({"cbc.ca": "B", "global news": "B"})
    assert ratings.reliability("news.cbc.ca") == "B"
    assert ratings.reliability("www.cbc.ca") == "B"
    assert ratings.reliability("Global News") == "B"
    assert ratings.reliability("example.org") == "F"
    assert load_sources(EXAMPLES / "sources.toml").reliability("pm.gc.ca") == "A"
    bad = tmp_path / "bad.toml"
    bad.write_text('[sources]\n"x.org" = "Z"\n')
    with pytest.raises(ConfigError, match="A to F"):
        load_sources(bad)
