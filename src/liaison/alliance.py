"""Partners and communities, as configured in one alliance file (TOML).

The file names the node's own country, the partners it shares with (country code, name,
clearance, trust, status, agreement) and the communities (FVEY, NATO, a mission...) with each
member's join and exit dates. ``docs/alliance.md`` describes the format; ``examples/alliance.toml``
is the demo alliance.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Literal

import pycountry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liaison.errors import ConfigError
from liaison.markings.classification import (
    RUNGS,
    Level,
    parse_level,
    protected_as,
    protection,
    rung,
)
from liaison.policy.rules import NodeRules
from liaison.stix.ids import derived_id

Trust = Literal["high", "medium", "low"]
Status = Literal["active", "suspended", "non-partner"]
CommunityKind = Literal["alliance", "mission", "union", "group"]

# A member listed without a join date has been one since before anything the node holds.
EARLIEST = date(1900, 1, 1)


def country_code(value: str) -> str:
    """The ISO 3166 alpha-3 code ``value``, upper-cased; ValueError if there is none."""
    code = value.strip().upper()
    if len(code) != 3 or pycountry.countries.get(alpha_3=code) is None:
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-3 country code")
    return code


def country_name(code: str) -> str:
    country = pycountry.countries.get(alpha_3=code)
    return country.name if country is not None else code


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Clearance(_Record):
    scale: str
    level: str

    @classmethod
    def parse(cls, text: str) -> Clearance:
        scale, sep, level = text.partition(":")
        if not sep or not scale.strip() or not level.strip():
            raise ValueError(f"clearance {text!r} is not SCALE:LEVEL (e.g. 'NATO:NS')")
        return cls(scale=scale.strip().upper(), level=level.strip().upper())

    def __str__(self) -> str:
        return f"{self.scale}:{self.level}"


class Partner(_Record):
    country: str
    name: str
    identity: str = ""
    clearance: Clearance | None = None
    trust: Trust = "medium"
    status: Status = "active"
    agreement: str = ""
    # How the partner's own rules protect levels its scale has no equivalent for: ladder rung
    # (e.g. "confidential") -> level of its clearance's scale (e.g. "SECRET"). The UK's:
    # foreign CONFIDENTIAL is protected as SECRET (docs/markings.md).
    protects_foreign: dict[str, str] = Field(default_factory=dict)
    # The partner node's Ed25519 public key (64 hex digits), pinned here: it verifies the
    # signatures on what the partner originated (docs/sync.md). Empty: none pinned.
    public_key: str = ""

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return country_code(value)

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        value = value.strip().lower()
        if value and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("public_key must be 64 hex digits (an Ed25519 public key)")
        return value

    @field_validator("clearance", mode="before")
    @classmethod
    def _clearance(cls, value: object) -> object:
        return Clearance.parse(value) if isinstance(value, str) else value

    @field_validator("clearance", mode="after")
    @classmethod
    def _known_level(cls, value: Clearance | None) -> Clearance | None:
        if value is not None:
            parse_level(str(value))  # ValueError names an unknown scale or level
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Partner:
        if not self.identity:
            object.__setattr__(self, "identity", derived_id("identity", f"agency:{self.country}"))
        if self.status != "non-partner" and self.clearance is None:
            raise ValueError(f"partner {self.country} needs a clearance (e.g. 'NATO:NS')")
        return self

    @model_validator(mode="after")
    def _protections(self) -> Partner:
        """Check ``protects_foreign`` against the partner's scale, and store it in one form:
        rung names in lower case, levels by their canonical name ("OFFICIAL-SENSITIVE")."""
        if not self.protects_foreign:
            return self
        where = f"partner {self.country}: protects_foreign"
        if self.clearance is None:
            raise ValueError(f"{where} needs a clearance, on whose scale it names levels")
        scale = parse_level(str(self.clearance)).scale
        rules: dict[str, str] = {}
        for name, stand_in in self.protects_foreign.items():
            try:
                rank = rung(name)
                found = protection(scale, rank, stand_in)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if RUNGS[rank] in rules:
                raise ValueError(f"{where}: {RUNGS[rank].upper()} is named twice")
            rules[RUNGS[rank]] = found.name
        object.__setattr__(self, "protects_foreign", dict(sorted(rules.items())))
        return self

    def protects(self, level: Level, limit: Level) -> Level | None:
        """The level of ``limit``'s scale at which this partner protects ``level`` under its
        ``protects_foreign`` rule, when ``level`` has no equivalent there and ``limit`` is on
        the partner's own scale (its clearance's); None otherwise."""
        if self.clearance is None or not self.protects_foreign:
            return None
        if parse_level(str(self.clearance)).scale != limit.scale:
            return None
        return protected_as(level, limit.scale, self.protects_foreign)


class Membership(_Record):
    country: str
    joined: date = EARLIEST
    left: date | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return country_code(value)

    @model_validator(mode="after")
    def _dates(self) -> Membership:
        if self.left is not None and self.left < self.joined:
            raise ValueError(f"{self.country} left ({self.left}) before it joined ({self.joined})")
        return self

    def active_on(self, day: date) -> bool:
        return self.joined <= day and (self.left is None or day < self.left)


class Community(_Record):
    name: str = Field(min_length=1, max_length=100)
    kind: CommunityKind = "alliance"
    description: str = ""
    members: tuple[Membership, ...] = ()

    @field_validator("members", mode="before")
    @classmethod
    def _members(cls, value: object) -> object:
        # A bare country code is a member since EARLIEST with no exit.
        if isinstance(value, list):
            return [{"country": m} if isinstance(m, str) else m for m in value]
        return value


def communities_of(communities: Iterable[Community], country: str, day: date) -> frozenset[str]:
    """The names of the communities ``country`` belongs to on ``day``."""
    return frozenset(
        c.name
        for c in communities
        if any(m.country == country and m.active_on(day) for m in c.members)
    )


class Collection(_Record):
    """A TAXII collection: which object types it holds and who may read or write it
    (partner country codes and community names)."""

    alias: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
    id: str = ""
    title: str = ""
    description: str = ""
    types: tuple[str, ...] = ()  # empty: every type
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _defaults(self) -> Collection:
        if not self.id:
            derived = derived_id("collection", self.alias).split("--", 1)[1]
            object.__setattr__(self, "id", derived)
        if not self.title:
            object.__setattr__(self, "title", self.alias)
        return self


class NodeConfig(_Record):
    country: str
    name: str

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        return country_code(value)


class Alliance(_Record):
    node: NodeConfig
    partners: tuple[Partner, ...] = ()
    communities: tuple[Community, ...] = ()
    rules: NodeRules = NodeRules()
    collections: tuple[Collection, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Alliance:
        codes = [p.country for p in self.partners]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ValueError(f"partners listed twice: {', '.join(duplicates)}")
        if self.node.country in codes:
            raise ValueError(f"the node's own country {self.node.country} is listed as a partner")
        names = [c.name for c in self.communities]
        if len(names) != len(set(names)):
            raise ValueError("a community is listed twice")
        aliases = [c.alias for c in self.collections]
        if len(aliases) != len(set(aliases)):
            raise ValueError("a collection alias is listed twice")
        known = set(codes) | {self.node.country}
        for community in self.communities:
            for member in community.members:
                if member.country not in known:
                    raise ValueError(
                        f"community {community.name}: member {member.country} is neither the "
                        "node nor a listed partner"
                    )
        return self

    def partner(self, code: str) -> Partner | None:
        return next((p for p in self.partners if p.country == code), None)


def parse_alliance(text: str, source: str = "alliance file") -> Alliance:
    """The alliance described by TOML ``text``; ConfigError naming the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    try:
        return Alliance.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        message = error["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{source}: {where}: {message}") from None


def load_alliance_file(path: Path) -> Alliance:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read alliance file {path}: {exc.strerror}") from None
    return parse_alliance(text, source=str(path))
