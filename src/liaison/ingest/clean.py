"""Stripping obvious extraction artifacts from a document's text, and nothing else.

What goes: page furniture lines that scrapers keep ("Click to play video: ...", "Story
continues below advertisement", "READ MORE: ..." links to other stories, "Main Container"),
machine-translation markers such as ``[19659007]`` and stray closing brackets left where they
stood, control characters, repeated blank lines and duplicate consecutive lines. What stays:
every sentence of the story, even a garbled one: we do not guess at words.
"""

from __future__ import annotations

import re
import unicodedata

_FURNITURE_LINE = re.compile(
    r"^\s*(click to play video\b.*|above:.*|story continues below advertisement"
    r"|read more:.*|read the original article here\.?|advertisement"
    r"|main container|main content|skip to (main )?content"
    r"|prime minister crest|share this( article)?:?|image:.*|photo:.*)\s*$",
    re.IGNORECASE,
)
# Translation-memory segment markers, e.g. "[19659007]".
_SEGMENT_MARKER = re.compile(r"\s*\[\d{5,}\]\s*")
# A closing bracket with no opening one before it on the line, e.g. "climate. ] Trudeau".
_STRAY_BRACKET = re.compile(r"(^|(?<=[.!?\"”]))\s*\]\s*")
_SPACES = re.compile(r"[ \t\u00a0]+")
# Control characters (C0 and C1, newline and tab excepted), zero-width and bidirectional
# format characters, the byte-order mark and private-use characters: never text of the story.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ue000-\uf8ff]"
)


def clean_text(text: str) -> str:
    """``text`` without extraction artifacts, paragraphs kept, whitespace normalized."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    lines: list[str] = []
    for raw in text.splitlines():
        line = _SEGMENT_MARKER.sub(" ", raw)
        line = _STRAY_BRACKET.sub(lambda m: m.group(1) + " ", line)
        line = _SPACES.sub(" ", line).strip()
        if _FURNITURE_LINE.match(line):
            continue
        if line and lines and line == lines[-1]:
            continue
        if not line and (not lines or not lines[-1]):
            continue
        lines.append(line)
    return "\n".join(lines).strip()
