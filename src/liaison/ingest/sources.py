"""How reliable each open source is: the A-F of the Admiralty grading, per source.

A TOML file maps source names or web domains to a reliability letter::

    [sources]
    "cbc.ca" = "B"
    "pm.gc.ca" = "A"
    "Global News" = "B"

A domain also covers its subdomains (``cbc.ca`` rates ``news.cbc.ca``). A source the file
does not name is F, "reliability cannot be judged": nothing is trusted by default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from liaison.errors import ConfigError
from liaison.markings.admiralty import RELIABILITY

UNKNOWN = "F"


@dataclass(frozen=True)
class SourceRatings:
    ratings: dict[str, str] = field(default_factory=dict)  # lowercase name -> A-F

    def reliability(self, source: str) -> str:
        name = source.strip().lower().removeprefix("www.")
        if name in self.ratings:
            return self.ratings[name]
        parts = name.split(".")
        for start in range(1, len(parts) - 1):
            parent = ".".join(parts[start:])
            if parent in self.ratings:
                return self.ratings[parent]
        return UNKNOWN


def load_sources(path: Path | None) -> SourceRatings:
    """The ratings in ``path``; none (every source F) when ``path`` is None."""
    if path is None:
        return SourceRatings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not TOML: {error}") from None
    table = data.get("sources", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [sources] must map names to A-F")
    ratings = {}
    for name, letter in table.items():
        if not isinstance(letter, str) or letter.upper() not in RELIABILITY:
            raise ConfigError(f"{path}: {name} must be rated A to F, not {letter!r}")
        ratings[name.strip().lower().removeprefix("www.")] = letter.upper()
    return SourceRatings(ratings)
