"""Deterministic corpora of valid STIX 2.1 objects.

``make_corpus``: shaped like a producer's feed. Indicators dominate, as in real feeds;
relationships and reports only point at objects generated before them, so any prefix of the
corpus is self-contained.

``Feed``: objects of realistic size and shape for serving benchmarks: reports of 300-1,500
words of threat-report prose (``Prose``), indicators, relationships and malware, each marked
as a caller's ``label_of`` says, every reference pointing at an earlier object its readers
may see; a twentieth of the objects are new versions of recent ones.
"""

from __future__ import annotations

import itertools
import random
import string
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


# --- a feed of realistic size and shape: prose reports, indicators, relationships -------------

FEED_SEED = 20250801
# What a feed is made of, by weight: reports carry 300-1,500 words of prose.
FEED_MIX = (("report", 30), ("indicator", 45), ("relationship", 22), ("malware", 3))
REPORT_WORDS = (300, 1_500)
# Every REVISE_EVERY-th object is a new version of a recent object instead of a new one.
REVISE_EVERY = 20
# Ids kept per (audience, type) for later objects to refer to; a report cites recent work.
_RECENT = 2_000
_RECENT_OBJECTS = 200

_ACTORS = (
    "Granite Heron", "Amber Lynx", "Cobalt Fennec", "Silent Osprey", "Velvet Jackal",
    "Iron Magpie", "Hollow Pike", "Saffron Kite", "Quiet Marten", "Ember Viper",
)  # fmt: skip
_MALWARE = (
    "Quillpost", "Tarnbeacon", "Mossgate", "Driftloader", "Palehook", "Ketchrat", "Sablewire",
    "Lanternfly", "Brindle", "Copperleaf", "Nightjar", "Wickerman",
)  # fmt: skip
_TOOLS = (
    "PowerShell", "PsExec", "Impacket", "Cobalt Strike", "Mimikatz", "AdFind", "Rclone",
    "Plink", "WMI", "scheduled tasks",
)  # fmt: skip
_TECHNIQUES = (
    "spear-phishing", "password spraying", "DLL side-loading", "credential dumping",
    "web shell deployment", "exploitation of edge devices", "watering-hole attacks",
    "token theft", "living-off-the-land techniques", "supply-chain compromise",
)  # fmt: skip
_REGIONS = (
    "Central Asia", "the Baltic states", "Western Europe", "South-East Asia", "the Middle East",
    "North America", "the Caucasus", "East Africa", "the Nordic countries", "Latin America",
)  # fmt: skip
_TOPICS = (
    "energy policy", "defence procurement", "trade negotiations", "elections",
    "critical minerals", "sanctions enforcement", "telecommunications regulation",
    "maritime security", "vaccine research", "border management",
)  # fmt: skip
_SECTOR_WORDS = (
    "energy", "defence", "telecommunications", "government", "financial", "health",
    "transport", "research", "manufacturing", "water",
)  # fmt: skip
_INFRA = (
    "virtual private servers", "compromised home routers", "cloud storage accounts",
    "dynamic DNS domains", "hijacked university servers", "anonymising proxy networks",
)  # fmt: skip
_PROTOCOLS = ("HTTPS", "DNS", "ICMP", "SMB", "WebSocket", "SMTP")
_NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
# Sentences of a threat report. Many contain forms a fingerprint slot can vary (national
# spellings, contractions, 'in order to', small numbers as words, 'said that the', a sentence
# adverb and its comma, serial lists, dashes), as written reports do.
_SENTENCES = (
    "{actor} targeted {num} {sector} organisations in {region} between {month} and {month2}.",
    "Analysts believe that the operation was intended to collect information on {topic}.",
    "Meanwhile, the operators continued to use {tool} in order to maintain access to "
    "compromised hosts.",
    "The group did not change its tooling amongst the {num} intrusions we analysed.",
    "The {malware} implant communicates with its servers over {proto}, {proto2} and {proto3}.",
    "We cannot exclude that other {sector} organisations were affected.",
    "The operators moved towards {infra} whilst keeping part of their older infrastructure.",
    "The actor registered {num} new domains that imitate {sector} portals.",
    "Defence ministries were a priority – and, in {num} cases, so were their suppliers.",
    "The loader is not signed, and it does not persist after a reboot.",
    "Moreover, the {malware} configuration is encrypted with a single-byte XOR key.",
    "Victims said that the e-mails appeared to come from a trusted partner.",
    "Although the initial access vector is not confirmed, {technique} was likely used.",
    "The malware collects the host name, the user name and the list of running processes.",
    "In {month} {year}, the operators began to use {tool} for lateral movement.",
    "Consequently, we assess with moderate confidence that {actor} is behind the activity.",
    "The campaign focussed on {sector} and {sector2} organisations in {region}.",
    "Indicators in this report were observed between {month} and {month2} {year}.",
    "All of the samples we analysed were compiled within {num} weeks of each other.",
    "The operators have not reused the certificates they used in earlier operations.",
    "They will likely resume the activity once the infrastructure is rebuilt.",
    "The intrusion set prioritised credentials for remote-access services.",
    "Network defenders should monitor for {technique} and for unusual {proto} traffic.",
    "We are confident that the same developer wrote both {malware} and {malware2}.",
    "Additionally, the actor used {infra} to stage data prior to exfiltration.",
    "The second stage is downloaded upon execution of a malicious macro.",
    "The {malware} backdoor was first reported in {year}, and it has been updated {num} "
    "times since.",
    "Indeed, {num} of the victims had been compromised before.",
    "The operators organised the infrastructure in {num} tiers, each with its own role.",
    "It is unclear whether the data was exfiltrated towards {region}.",
    "The team's judgement is based on code overlaps, shared infrastructure and timing.",
    "Whilst the tooling is not novel, the targeting is highly selective.",
    "Similarly, the group has used legitimate cloud services for command and control.",
    "The actor's operational security is poor: it reused passwords across {num} servers.",
    "Customers in the {sector} sector have been notified and given guidance.",
    "Partners were briefed on {weekday} and agreed that the findings should be shared.",
    "Most of the victims are located in {region}, with a few in {region2}.",
    "The sample doesn't execute if a debugger is attached, and it checks the keyboard layout.",
    "Nevertheless, the campaign is ongoing and new samples continue to appear.",
    "The operators used {technique} against {num} {sector} ministries and their contractors.",
    "Investigators said the stolen documents related to {topic}.",
    "Furthermore, {actor} has shown an interest in {topic} since {year}.",
    "The implant's modular design lets the operators add capabilities as they need them.",
    "We haven't seen the actor use zero-day vulnerabilities in this campaign.",
    "The operators recognised the sandbox and stopped the infection chain.",
    "A web shell was found on {num} internet-facing servers of the same organisation.",
)
# Sentences with nothing a fingerprint slot can vary: with them a text has about as many slots
# per 1,000 words as analysts' reports (docs/fingerprint.md: 54 on the seed reports).
_PLAIN_SENTENCES = (
    "The first sample was uploaded to a public malware repository from {region}.",
    "The loader decrypts its payload in memory and injects it into a legitimate process.",
    "Persistence is achieved through a registry run key.",
    "The implant beacons every few minutes with a random delay.",
    "Exfiltrated files were compressed and split into small archives.",
    "The operators worked mostly during business hours in {region}.",
    "Most of the lures referred to {topic}.",
    "The phishing e-mails carried a link to a file hosted on a cloud service.",
    "The web shell accepted commands in encoded HTTP parameters.",
    "Several victims reported unusual sign-in attempts before the intrusion.",
    "The domain was registered a week before the first e-mail was sent.",
    "No evidence of destructive activity was found.",
    "The {malware} sample checks for a mutex before it runs.",
    "Its configuration contains a campaign identifier and a list of servers.",
    "The victims belong to the {sector} sector.",
    "The intrusion began with a malicious attachment.",
    "The actor used stolen credentials to log in to the VPN.",
    "Traffic to the servers was blocked at the perimeter.",
    "The certificates used by the servers were self-signed.",
    "We observed the activity over a period of several months.",
    "The malware stores its configuration in the registry.",
    "The indicators were shared with national CERTs.",
    "Analysis of the infrastructure is ongoing.",
    "The second stage communicates with {proto} requests to a hard-coded address.",
    "The attackers deleted event logs after each session.",
)
# The share of plain sentences in a text.
_PLAIN = 0.6
_TITLES = (
    "{actor} targets {sector} organisations in {region} with {malware}",
    "{malware}: a new backdoor used against the {sector} sector",
    "Assessment of {actor} activity, {month} {year}",
    "{technique} campaign against {sector} ministries in {region}",
    "Update on {malware} infrastructure and tooling",
)
_INDICATOR_NOTES = (
    "Seen in {actor} activity against {sector} organisations in {region}.",
    "Used by {malware} for command and control over {proto}.",
    "Staging server observed during {technique} against {sector} targets.",
    "Delivered {malware} to {num} victims in {region}.",
)


class Prose:
    """Deterministic threat-report prose: a pool of sentences filled from templates with a
    seeded generator, from which each text draws. Drawing from a pool keeps generation fast
    (a 1,000-word report in microseconds), so a million objects load in minutes."""

    def __init__(self, seed: int = FEED_SEED, pool: int = 4_000) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.sentences = [
            self._fill(rng.choice(_PLAIN_SENTENCES if rng.random() < _PLAIN else _SENTENCES), rng)
            for _ in range(pool)
        ]
        self.mean_words = sum(len(s.split()) for s in self.sentences) / pool
        self.notes = [self._fill(rng.choice(_INDICATOR_NOTES), rng) for _ in range(pool // 4)]
        self.titles = [self._fill(rng.choice(_TITLES), rng) for _ in range(pool // 4)]

    @staticmethod
    def _fill(template: str, rng: random.Random) -> str:
        two_sectors = rng.sample(_SECTOR_WORDS, 2)
        two_regions = rng.sample(_REGIONS, 2)
        two_months = sorted(rng.sample(range(12), 2))
        malware = rng.sample(_MALWARE, 2)
        protocols = rng.sample(_PROTOCOLS, 3)
        values = {
            "actor": rng.choice(_ACTORS),
            "malware": malware[0],
            "malware2": malware[1],
            "tool": rng.choice(_TOOLS),
            "technique": rng.choice(_TECHNIQUES),
            "region": two_regions[0],
            "region2": two_regions[1],
            "topic": rng.choice(_TOPICS),
            "sector": two_sectors[0],
            "sector2": two_sectors[1],
            "infra": rng.choice(_INFRA),
            "proto": protocols[0],
            "proto2": protocols[1],
            "proto3": protocols[2],
            "num": rng.choice(_NUMBER_WORDS),
            "month": _MONTH_NAMES[two_months[0]],
            "month2": _MONTH_NAMES[two_months[1]],
            "year": str(rng.randint(2015, 2025)),
            "weekday": rng.choice(_WEEKDAYS),
        }
        text = template.format(**values)
        return text[0].upper() + text[1:]

    def text(self, words: int, rng: random.Random) -> str:
        """About ``words`` words of prose in paragraphs of three to six sentences."""
        chosen = rng.choices(self.sentences, k=max(3, round(words / self.mean_words)))
        sizes = rng.choices((3, 4, 5, 6), k=len(chosen) // 3 + 1)
        paragraphs = []
        at = 0
        for size in sizes:
            if at >= len(chosen):
                break
            paragraphs.append(" ".join(chosen[at : at + size]))
            at += size
        return "\n\n".join(paragraphs)

    def title(self, rng: random.Random) -> str:
        return rng.choice(self.titles)

    def note(self, rng: random.Random) -> str:
        return rng.choice(self.notes)


@dataclass(frozen=True)
class Label:
    """How one generated object is marked and who made it. ``audience`` ranks who may see
    it (higher: more partners); an object refers only to objects of an equal or higher rank,
    as an analyst cites what the report's readers may read (a few references go anywhere,
    and those a reader may not see are cut from its copy)."""

    markings: tuple[str, ...]
    originator: str
    audience: int


class Feed:
    """A sequential, deterministic feed: object ``i`` depends only on the objects before it,
    so every store size is a prefix of the same feed. ``label_of(i, rng)`` marks object
    ``i``; ``anchors`` are ids every audience may see (producers' identities), cited when a
    rank has nothing to cite yet."""

    def __init__(
        self,
        label_of: Callable[[int, random.Random], Label],
        anchors: Sequence[str],
        seed: int = FEED_SEED,
        mix: Sequence[tuple[str, int]] = FEED_MIX,
    ) -> None:
        self.label_of = label_of
        self.anchors = list(anchors)
        self.rng = random.Random(seed)
        self.prose = Prose(seed)
        self.kinds = [k for k, _ in mix]
        self.cumulative = list(itertools.accumulate(w for _, w in mix))
        self.index = 0
        self.recent: dict[tuple[int, str], deque[str]] = {}
        # (kind, audience) -> the pools of recent ids its readers may all see.
        self.eligible: dict[tuple[str, int], list[deque[str]]] = {}
        self.latest: deque[dict[str, Any]] = deque(maxlen=_RECENT_OBJECTS)
        self.start = datetime(2025, 1, 1, tzinfo=UTC)

    def take(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` objects of the feed."""
        return [self._next() for _ in range(count)]

    def _next(self) -> dict[str, Any]:
        index = self.index
        self.index += 1
        rng = self.rng
        if index % REVISE_EVERY == REVISE_EVERY - 1 and self.latest:
            return self._revise(rng)
        kind = rng.choices(self.kinds, cum_weights=self.cumulative)[0]
        label = self.label_of(index, rng)
        created = _stamp(self.start + timedelta(seconds=index, milliseconds=rng.randrange(1000)))
        obj: dict[str, Any] = {
            "type": kind,
            "spec_version": "2.1",
            "id": f"{kind}--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "created": created,
            "modified": created,
            "created_by_ref": label.originator,
        }
        if kind == "report":
            self._report(obj, label, rng)
        elif kind == "indicator":
            self._indicator(obj, rng)
        elif kind == "relationship":
            self._relationship(obj, label, rng)
        else:
            obj |= {
                "name": rng.choice(_MALWARE) + f" variant {rng.randrange(1, 400)}",
                "is_family": False,
                "malware_types": [rng.choice(("backdoor", "remote-access-trojan", "dropper"))],
                "description": self.prose.note(rng),
            }
        obj["object_marking_refs"] = list(label.markings)
        pool = self.recent.get((label.audience, kind))
        if pool is None:
            pool = self.recent[(label.audience, kind)] = deque(maxlen=_RECENT)
            self.eligible.clear()
        pool.append(obj["id"])
        self.latest.append(obj)
        return obj

    def _cite(self, kind: str, audience: int, rng: random.Random) -> str | None:
        """A recent id of ``kind`` that every reader of ``audience`` may see, or None."""
        pools = self.eligible.get((kind, audience))
        if pools is None:
            pools = [p for (rank, k), p in self.recent.items() if k == kind and rank >= audience]
            self.eligible[(kind, audience)] = pools
        if not pools:
            return None
        # One draw over the pools' concatenation: each recent id equally likely.
        at = int(rng.random() * sum(len(p) for p in pools))
        for pool in pools:
            if at < len(pool):
                return pool[at]
            at -= len(pool)
        return None

    def _any(self, kind: str, rng: random.Random) -> str | None:
        return self._cite(kind, -1_000_000, rng)

    def _report(self, obj: dict[str, Any], label: Label, rng: random.Random) -> None:
        refs: dict[str, None] = {}
        kinds = rng.choices(("indicator", "relationship", "malware"), (60, 30, 10), k=30)
        for kind in kinds[: rng.randint(3, 30)]:
            anywhere = rng.random() < 0.1
            ref = self._any(kind, rng) if anywhere else self._cite(kind, label.audience, rng)
            if ref is not None:
                refs[ref] = None
        # At least one reference its readers may see, or the copy would be incomplete.
        visible = self._cite("indicator", label.audience, rng) or rng.choice(self.anchors)
        refs[visible] = None
        obj |= {
            "name": self.prose.title(rng),
            "description": self.prose.text(rng.randint(*REPORT_WORDS), rng),
            "report_types": [rng.choice(("threat-actor", "malware", "campaign", "indicator"))],
            "published": obj["created"],
            "object_refs": list(refs),
            "confidence": rng.choice((15, 50, 85)),
        }

    def _indicator(self, obj: dict[str, Any], rng: random.Random) -> None:
        choice = rng.randrange(4)
        if choice == 0:
            octets = (rng.choice(_FIRST_OCTETS), rng.randrange(256), rng.randrange(256))
            ip = ".".join(map(str, octets)) + f".{rng.randrange(1, 255)}"
            name, pattern = f"C2 server {ip}", f"[ipv4-addr:value = '{ip}']"
        elif choice == 1:
            label = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 14)))
            domain = f"{label}.{rng.choice(_TLDS)}"
            name, pattern = f"Phishing domain {domain}", f"[domain-name:value = '{domain}']"
        elif choice == 2:
            sha256 = f"{rng.getrandbits(256):064x}"
            name, pattern = f"Payload {sha256[:12]}", f"[file:hashes.'SHA-256' = '{sha256}']"
        else:
            label = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 12)))
            path = rng.choice(("login", "update", "gate.php"))
            url = f"https://{label}.{rng.choice(_TLDS)}/{path}"
            name, pattern = f"Malicious URL {url}", f"[url:value = '{url}']"
        obj |= {
            "name": name,
            "description": self.prose.note(rng),
            "indicator_types": [rng.choice(_INDICATOR_TYPES)],
            "pattern": pattern,
            "pattern_type": "stix",
            "pattern_version": "2.1",
            "valid_from": obj["created"],
            "confidence": rng.choice((15, 50, 85)),
        }

    def _relationship(self, obj: dict[str, Any], label: Label, rng: random.Random) -> None:
        source = self._cite("indicator", label.audience, rng)
        target = self._cite("malware", label.audience, rng)
        kind = "indicates"
        if source is None:
            source, target, kind = rng.choice(self.anchors), rng.choice(self.anchors), "related-to"
        elif target is None:
            target, kind = rng.choice(self.anchors), "related-to"
        obj |= {"relationship_type": kind, "source_ref": source, "target_ref": target}

    def fresh_indicators(
        self, count: int, markings: Sequence[str], rng: random.Random
    ) -> list[dict[str, Any]]:
        """``count`` new indicators outside the feed (fresh ids, created now, no
        ``created_by_ref``: a partner's own submission), marked ``markings``."""
        now = _stamp(datetime.now(UTC))
        items = []
        for _ in range(count):
            obj: dict[str, Any] = {
                "type": "indicator",
                "spec_version": "2.1",
                "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "created": now,
                "modified": now,
            }
            self._indicator(obj, rng)
            obj["object_marking_refs"] = list(markings)
            items.append(obj)
        return items

    def _revise(self, rng: random.Random) -> dict[str, Any]:
        """A new version of a recent object: same id, markings and originator, later
        ``modified``, a changed confidence (a report also gets an update paragraph)."""
        position = rng.randrange(len(self.latest))
        earlier = self.latest[position]
        modified = datetime.strptime(earlier["modified"], "%Y-%m-%dT%H:%M:%S.%f%z")
        later = modified + timedelta(milliseconds=rng.randrange(1, 86_400_000))
        revised = earlier | {"modified": _stamp(later), "confidence": rng.choice((15, 50, 85))}
        if earlier["type"] == "report":
            revised["description"] = (
                earlier["description"] + "\n\nUpdate: " + self.prose.text(40, rng)
            )
        self.latest[position] = revised
        return revised
