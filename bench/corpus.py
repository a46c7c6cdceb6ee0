"""A deterministic corpus of valid STIX 2.1 objects, shaped like a producer's feed.

Indicators dominate, as in real feeds; relationships and reports only point at objects
generated before them, so any prefix of the corpus is self-contained.
"""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from liaison.markings.tlp import TLP_CLEAR

SEED = 20250611
_START = datetime(2024, 1, 1, tzinfo=UTC)
_DAY_MS = 86_400_000
# Identities that every object's created_by_ref picks from; they come first.
_PRODUCERS = 25

_KINDS = ("indicator", "relationship", "report", "identity")
_WEIGHTS = (60, 25, 8, 7)

_TLDS = ("com", "net", "org", "info", "biz", "xyz", "top", "ru", "cn", "io")
_INDICATOR_TYPES = ("malicious-activity", "anomalous-activity", "compromised", "attribution")
_PHASES = ("delivery", "exploitation", "installation", "command-and-control")
_CONTEXTS = (
    "a phishing campaign",
    "ransomware intrusions",
    "credential theft",
    "commodity malware",
    "a supply-chain compromise",
)
_SECTORS = (
    "government",
    "financial-services",
    "energy",
    "healthcare",
    "telecommunications",
    "defense",
    "technology",
    "transportation",
)
_NAME_WORDS = (
    "North",
    "Blue",
    "Iron",
    "Delta",
    "Harbor",
    "Summit",
    "Quartz",
    "Cedar",
    "Signal",
    "Atlas",
    "Meridian",
    "Granite",
)
_NAME_SUFFIXES = ("CERT", "Labs", "Security", "Ministry", "Bank", "Telecom", "Energy")
# First octets of routable unicast addresses (no private 10/8, no loopback).
_FIRST_OCTETS = tuple(n for n in range(1, 224) if n not in (10, 127))


def make_corpus(count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """``count`` valid STIX 2.1 objects; the same ones for the same ``count`` and ``seed``."""
    return _Generator(seed).objects(count)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.producers: list[str] = []
        self.identities: list[str] = []
        self.indicators: list[str] = []
        self.relationships: list[str] = []

    def objects(self, count: int) -> list[dict[str, Any]]:
        out = [self.producer() for _ in range(min(count, _PRODUCERS))]
        while len(out) < count:
            kind = self.rng.choices(_KINDS, _WEIGHTS)[0]
            # Relationships and reports need indicators to point at.
            if kind == "identity":
                out.append(self.identity())
            elif kind == "indicator" or len(self.indicators) < 2:
                out.append(self.indicator())
            elif kind == "relationship":
                out.append(self.relationship())
            else:
                out.append(self.report())
        return out

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def common(self, stix_type: str) -> dict[str, Any]:
        created = _START + timedelta(milliseconds=self.rng.randrange(365 * _DAY_MS))
        # Most objects are never revised; the rest were revised within a month.
        revised = self.rng.random() < 0.3
        modified = created + timedelta(milliseconds=self.rng.randrange(30 * _DAY_MS) * revised)
        obj_id = f"{stix_type}--{self.uuid4()}"
        return {
            "type": stix_type,
            "spec_version": "2.1",
            "id": obj_id,
            "created": _stamp(created),
            "modified": _stamp(modified),
            # A producer's own identity is created by itself.
            "created_by_ref": self.rng.choice(self.producers) if self.producers else obj_id,
            "object_marking_refs": [TLP_CLEAR],
        }

    def org_name(self) -> str:
        words = self.rng.sample(_NAME_WORDS, 2)
        return f"{words[0]} {words[1]} {self.rng.choice(_NAME_SUFFIXES)}"

    def producer(self) -> dict[str, Any]:
        obj = self.identity()
        self.producers.append(obj["id"])
        return obj

    def identity(self) -> dict[str, Any]:
        obj = self.common("identity")
        obj |= {
            "name": self.org_name(),
            "identity_class": "organization",
            "sectors": [self.rng.choice(_SECTORS)],
            "contact_information": f"soc@{self.domain()}",
        }
        self.identities.append(obj["id"])
        return obj

    def domain(self) -> str:
        label = "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(6, 14)))
        return f"{label}.{self.rng.choice(_TLDS)}"

    def ipv4(self) -> str:
        rng = self.rng
        first = rng.choice(_FIRST_OCTETS)
        return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"

    def observable(self) -> tuple[str, str]:
        """A name and a STIX pattern for one indicator."""
        rng = self.rng
        choice = rng.randrange(6)
        if choice == 0:
            ip = self.ipv4()
            return f"C2 server {ip}", f"[ipv4-addr:value = '{ip}']"
        if choice == 1:
            network = self.ipv4().rsplit(".", 1)[0] + ".0/24"
            return f"Scanning from {network}", f"[ipv4-addr:value ISSUBSET '{network}']"
        if choice == 2:
            domain = self.domain()
            return f"Phishing domain {domain}", f"[domain-name:value = '{domain}']"
        if choice == 3:
            url = f"https://{self.domain()}/{rng.choice(('login', 'update', 'dl', 'gate.php'))}"
            return f"Malicious URL {url}", f"[url:value = '{url}']"
        if choice == 4:
            sha256 = f"{rng.getrandbits(256):064x}"
            return f"Payload {sha256[:12]}", f"[file:hashes.'SHA-256' = '{sha256}']"
        md5, sha1 = f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(160):040x}"
        return (
            f"Dropper {md5[:12]}",
            f"[file:hashes.MD5 = '{md5}' OR file:hashes.'SHA-1' = '{sha1}']",
        )

    def indicator(self) -> dict[str, Any]:
        obj = self.common("indicator")
        name, pattern = self.observable()
        obj |= {
            "name": name,
            "description": f"{name}, seen in {self.rng.choice(_CONTEXTS)}.",
            "indicator_types": [self.rng.choice(_INDICATOR_TYPES)],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": obj["created"],
            "confidence": self.rng.choice((15, 50, 85)),
        }
        if self.rng.random() < 0.5:
            obj["kill_chain_phases"] = [
                {
                    "kill_chain_name": "lockheed-martin-cyber-kill-chain",
                    "phase_name": self.rng.choice(_PHASES),
                }
            ]
        if self.rng.random() < 0.3:
            created = datetime.strptime(obj["created"], "%Y-%m-%dT%H:%M:%S.%f%z")
            obj["valid_until"] = _stamp(created + timedelta(days=self.rng.randint(30, 365)))
        self.indicators.append(obj["id"])
        return obj

    def relationship(self) -> dict[str, Any]:
        obj = self.common("relationship")
        if self.rng.random() < 0.4:
            source, target = self.rng.sample(self.indicators, 2)
            kind = "derived-from"
        else:
            source, target = self.rng.choice(self.indicators), self.rng.choice(self.identities)
            kind = "related-to"
        obj |= {"relationship_type": kind, "source_ref": source, "target_ref": target}
        self.relationships.append(obj["id"])
        return obj

    def report(self) -> dict[str, Any]:
        obj = self.common("report")
        refs: dict[str, None] = {}
        for _ in range(self.rng.randint(1, 30)):
            pool = self.rng.choices(
                (self.indicators, self.relationships or self.indicators, self.identities),
                (70, 20, 10),
            )[0]
            refs[self.rng.choice(pool)] = None
        obj |= {
            "name": f"{self.org_name()} weekly threat summary",
            "report_types": ["threat-report"],
            "published": obj["modified"],
            "object_refs": list(refs),
        }
        return obj
