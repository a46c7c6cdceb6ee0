"""The node's own release rules, set in the ``[rules]`` table of the alliance file."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from liaison.markings.classification import parse_level

TlpLevel = Literal["clear", "green", "amber", "amber+strict", "red"]


class NodeRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # TLP level given to an object of this node that carries no handling marking at all;
    # None withholds such objects ("unmarked").
    unmarked: TlpLevel | None = None
    # Highest classification (SCALE:LEVEL) released to a partner of each trust level.
    trust_ceilings: dict[str, str] = Field(default_factory=lambda: {"low": "NATO:NC"})
    # Partners (country codes) and communities that TLP:AMBER may go to.
    amber_scope: frozenset[str] = frozenset()

    @field_validator("trust_ceilings")
    @classmethod
    def _known_levels(cls, value: dict[str, str]) -> dict[str, str]:
        for trust, level in value.items():
            if trust not in ("high", "medium", "low"):
                raise ValueError(f"trust_ceilings: {trust!r} is not high, medium or low")
            parse_level(level)
        return value
