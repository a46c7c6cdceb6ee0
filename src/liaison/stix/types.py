"""The STIX types a filter may name: STIX 2.1's own (as the stix2 library knows them) and the
custom types of objects in the store. Any other name is a mistake, not an empty result."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa

from liaison.errors import UnknownType, did_you_mean
from liaison.store.schema import objects


@cache
def stix_types() -> frozenset[str]:
    """Every STIX 2.1 object type: domain, relationship, meta and cyber-observable objects."""
    from stix2.registry import STIX2_OBJ_MAPS

    maps = STIX2_OBJ_MAPS["2.1"]
    return (frozenset(maps["objects"]) | frozenset(maps["observables"])) - {"bundle"}


def check_type(connection: sa.Connection, type_: str) -> None:
    """UnknownType unless ``type_`` is a STIX 2.1 type or the type of a stored object."""
    if type_ in stix_types():
        return
    stored = set(connection.execute(sa.select(objects.c.type).distinct()).scalars())
    if type_ in stored:
        return
    hint = did_you_mean(type_, stix_types() | stored)
    raise UnknownType(f"{type_!r} is not a STIX 2.1 object type nor a type in the store{hint}")
