"""The originator's control across three nodes: Canada shares a SECRET REL TO FVEY report
with the USA; the USA's node will not pass it to France until Canada consents, passes it
once Canada does, and stops when Canada revokes; France's node accepts Canada's object from
the USA only with Canada's signature and consent. docs/consent.md."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa

from liaison.errors import InputError
from liaison.importer import import_objects
from liaison.ledger.log import entries
from liaison.markings.handling import marking_definition
from liaison.node import Node, apply_alliance, init_node, load_signing_key
from liaison.policy.consent import answer, ask, consent_requests, consents, grant, revoke
from liaison.policy.explain import explain
from liaison.policy.grants import rebuild
from liaison.release.onward import onward_chain
from liaison.settings import InputLimits, Settings
from liaison.stix import signature
from liaison.stix.consent import CONSENT_TYPE
from liaison.stix.notice import NOTICE_TYPE
from liaison.stix.signature import Signer, sign
from liaison.stix.timestamps import from_micros, now_micros
from liaison.store.engine import write_transaction
from liaison.store.schema import disclosures, objects
from liaison.taxii.credentials import issue_credentials
from liaison.taxii.peers import PeerSecret, add_peer
from liaison.taxii.sync import pull, push
from tests.taxii.conftest import serving

REPORT = "report--5a0b6c8e-3f1d-4e2a-9b7c-1d2e3f4a5b6c"
# The core of the protocol runs on PostgreSQL stores too.
BOTH = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
SCHEMAS = Path(signature.__file__).parent / "schemas"


@dataclass
class Nodes:
    can: Node
    usa: Node
    fra: Node

    def all(self) -> list[Node]:
        return [self.can, self.usa, self.fra]


def _alliance(me: Node, others: list[Node]) -> str:
    clearance = {"CAN": "CAN:TOP SECRET", "USA": "USA:TS", "FRA": "NATO:NS"}
    text = f'[node]\ncountry = "{me.country}"\nname = "{me.country} node"\n\n'
    for other in others:
        text += (
            f'[[partners]]\ncountry = "{other.country}"\nname = "{other.country} node"\n'
            f'clearance = "{clearance[other.country]}"\ntrust = "high"\n'
            f'public_key = "{other.public_key_hex}"\nidentity = "{other.identity_id}"\n\n'
        )
    text += (
        '[[communities]]\nname = "FVEY"\nkind = "alliance"\nmembers = [\n'
        '  { country = "CAN", joined = 1946-03-05 },\n'
        '  { country = "USA", joined = 1946-03-05 },\n]\n\n'
        '[[communities]]\nname = "NATO"\nkind = "alliance"\nmembers = [\n'
        '  { country = "CAN", joined = 1949-08-24 },\n'
        '  { country = "USA", joined = 1949-08-24 },\n'
        '  { country = "FRA", joined = 1949-08-24 },\n]\n\n'
        '[[collections]]\nalias = "shared"\ntitle = "Shared"\n'
        'read = ["NATO"]\nwrite = ["NATO"]\n'
    )
    return text


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The nodes' stores: SQLite, unless a test asks for PostgreSQL (``indirect``)."""
    return getattr(request, "param", "sqlite")


def _database(request: pytest.FixtureRequest, backend: str, path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{path / 'store.db'}"
    admin_url = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def nodes(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Nodes:
    made = {}
    for country in ("CAN", "USA", "FRA"):
        settings = Settings(
            home=tmp_path / country / "home",
            database_url=_database(request, backend, tmp_path / country),
            limits=InputLimits(),
            validation_workers=1,
        )
        made[country], _ = init_node(settings, country, f"{country} node")
    for country, node in made.items():
        path = tmp_path / country / "alliance.toml"
        path.write_text(_alliance(node, [n for c, n in made.items() if c != country]))
        apply_alliance(node, path)
    yield Nodes(made["CAN"], made["USA"], made["FRA"])
    for node in made.values():
        node.engine.dispose()


def _report(can: Node, modified: str = "2026-12-01T00:00:00.000Z") -> list[dict]:
    secret = marking_definition(can.identity_id, "CAN:SECRET", ["FVEY"])
    report = {
        "type": "report",
        "spec_version": "2.1",
        "id": REPORT,
        "created": "2026-12-01T00:00:00.000Z",
        "modified": modified,
        "created_by_ref": can.identity_id,
        "name": "Convoy movements near the border",
        "description": "Two convoys were seen moving west at night.",
        "published": "2026-12-01T00:00:00.000Z",
        "report_types": ["threat-report"],
        "object_refs": [can.identity_id],
        "object_marking_refs": [secret["id"]],
    }
    return [secret, report]


def _peer(node: Node, name: str, url: str, partner: str, serving_node: Node) -> None:
    with write_transaction(serving_node.engine) as connection:
        issued = issue_credentials(connection, node.country)
    with write_transaction(node.engine) as connection:
        add_peer(
            connection,
            load_signing_key(node.settings.home),
            name,
            url,
            partner,
            issued.username,
            PeerSecret(issued.password, issued.token),
        )


def _held(node: Node, object_id: str) -> list[tuple[str, str | None, dict]]:
    with node.engine.connect() as connection:
        rows = connection.execute(
            sa.select(objects.c.owner, objects.c.received_from, objects.c.body)
            .where(objects.c.id == object_id)
            .order_by(objects.c.version)
        )
        return [(owner, got, json.loads(body)) for owner, got, body in rows]


def _key(node: Node):
    return load_signing_key(node.settings.home)


def _explain(node: Node, partner: str):
    with node.engine.connect() as connection:
        return explain(connection, REPORT, partner)


@pytest.fixture
def linked(nodes: Nodes):
    """Canada's and France's nodes serving; the USA's node with both as peers."""
    report = import_objects(nodes.can.engine, _report(nodes.can))
    assert [s.status for s in report.statuses] == ["added", "added"]
    with serving(nodes.can) as can_url, serving(nodes.fra) as fra_url:
        _peer(nodes.usa, "can", can_url, "CAN", nodes.can)
        _peer(nodes.usa, "fra", fra_url, "FRA", nodes.fra)
        yield nodes


def _sync(usa: Node) -> None:
    pull(usa, "can")
    push(usa, "fra")
    push(usa, "can")  # the onward notices


def test_without_consent_the_report_stops_at_the_usa_and_the_reason_says_so(linked):
    _sync(linked.usa)
    (version,) = _held(linked.usa, REPORT)
    assert version[:2] == ("CAN", "CAN")
    why = _explain(linked.usa, "FRA")
    assert why.decision.decision == "withhold"
    assert {"rel-to", "third-party"} <= {r.code for r in why.decision.reasons}
    assert _held(linked.fra, REPORT) == []


@BOTH
def test_with_consent_the_usa_passes_it_on_and_france_keeps_canada_as_its_owner(linked):
    with write_transaction(linked.can.engine) as connection:
        consent = grant(connection, REPORT, "USA", ["FRA"])
    _sync(linked.usa)
    why = _explain(linked.usa, "FRA")
    assert why.decision.released
    assert any(r.code == "consent" and consent.id in r.text for r in why.decision.reasons)
    (version,) = _held(linked.fra, REPORT)
    # Canada's object, relayed by the USA, exactly as Canada signed it for the USA.
    assert version[:2] == ("CAN", "USA")
    assert version[2] == _held(linked.usa, REPORT)[0][2]
    with linked.fra.engine.connect() as connection:
        (held,) = consents(connection)
    assert (held.owner, held.consent.id, held.consent.recipient) == ("CAN", consent.id, "USA")


@BOTH
def test_a_revoked_consent_stops_the_next_version(linked):
    with write_transaction(linked.can.engine) as connection:
        consent = grant(connection, REPORT, "USA", ["FRA"])
    _sync(linked.usa)
    with write_transaction(linked.can.engine) as connection:
        revoke(connection, consent.id)
    import_objects(linked.can.engine, _report(linked.can, "2026-12-02T00:00:00.000Z")[1:])
    _sync(linked.usa)
    assert len(_held(linked.usa, REPORT)) == 2
    assert len(_held(linked.fra, REPORT)) == 1  # only the version sent under the consent
    why = _explain(linked.usa, "FRA")
    assert why.decision.decision == "withhold"
    with linked.usa.engine.connect() as connection:
        states = {h.consent.id: h.consent.state(datetime.now(UTC)) for h in consents(connection)}
    assert states == {consent.id: "revoked"}


def _signed_consent(can: Node, key=None, **changes) -> dict:
    stamp = from_micros(now_micros())
    body = {
        "type": CONSENT_TYPE,
        "spec_version": "2.1",
        "id": "liaison-consent--0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
        "created": stamp,
        "modified": stamp,
        "created_by_ref": can.identity_id,
        "recipient": "USA",
        "onward": ["FRA"],
        "object_refs": [REPORT],
        **changes,
    }
    return sign(body, Signer(can.identity_id, key or load_signing_key(can.settings.home)))


def test_forged_edited_and_expired_consents_release_nothing(linked):
    _sync(linked.usa)
    other = load_signing_key(linked.fra.settings.home)
    forged = _signed_consent(linked.can, key=other)
    edited = {**_signed_consent(linked.can), "onward": ["FRA", "DEU"]}
    for bad in (forged, edited):
        (status,) = import_objects(linked.usa.engine, [bad], received_from="CAN").statuses
        assert status.status == "rejected"
        assert "signature" in status.messages[0]
    assert _explain(linked.usa, "FRA").decision.decision == "withhold"
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    expired = _signed_consent(linked.can, valid_until=f"{yesterday}T23:59:59.999Z")
    (status,) = import_objects(linked.usa.engine, [expired], received_from="CAN").statuses
    assert status.status == "added"
    why = _explain(linked.usa, "FRA")
    assert why.decision.decision == "withhold"
    assert any(
        r.code == "consent-expired" and expired["id"] in r.text for r in why.decision.reasons
    )


def test_france_refuses_canadas_object_relayed_without_consent(linked):
    _sync(linked.usa)
    (_, _, signed) = _held(linked.usa, REPORT)[0]
    (status,) = import_objects(linked.fra.engine, [signed], received_from="USA").statuses
    assert status.status == "rejected"
    assert "without a consent of CAN that lets USA pass it to FRA" in status.messages[0]
    # Nor with a consent naming another recipient, nor with its signature stripped.
    to_gbr = _signed_consent(linked.can, recipient="GBR")
    stripped = {k: v for k, v in signed.items() if k != "extensions"}
    statuses = import_objects(linked.fra.engine, [to_gbr, signed], received_from="USA").statuses
    assert [s.status for s in statuses] == ["added", "rejected"]
    (status,) = import_objects(linked.fra.engine, [stripped], received_from="USA").statuses
    assert status.status == "rejected"
    assert "carries no originator's signature" in status.messages[0]
    assert _held(linked.fra, REPORT) == []


def test_a_policy_rebuild_keeps_the_consents(linked):
    with write_transaction(linked.can.engine) as connection:
        consent = grant(connection, REPORT, "USA", ["FRA"])
    pull(linked.usa, "can")
    with write_transaction(linked.usa.engine) as connection:
        rebuild(connection)
    why = _explain(linked.usa, "FRA")
    assert any(r.code == "consent" and consent.id in r.text for r in why.decision.reasons)


@BOTH
def test_canada_sees_the_onward_chain_with_a_verified_proof(linked):
    with write_transaction(linked.can.engine) as connection:
        consent = grant(connection, REPORT, "USA", ["FRA"])
    _sync(linked.usa)
    with linked.can.engine.connect() as connection:
        chain = [r.as_json() for r in onward_chain(connection, REPORT)]
    assert [(r["from"], r["to"], r["via"]) for r in chain] == [
        ("CAN", "USA", "ledger"),
        ("USA", "FRA", "notice"),
    ]
    notified = chain[1]
    assert notified["consent"] == consent.id and notified["covered"] and notified["verified"]
    # As Canada keeps it: the USA's object, valid against its schema.
    schema = json.loads((SCHEMAS / "liaison-onward-notice.json").read_text())
    jsonschema.validate(_notice(linked.can), schema)
    assert notified["version"] == chain[0]["version"] and notified["notified_at"]
    # The entry the notice names is the USA's disclosure to France, in the USA's ledger.
    with linked.usa.engine.connect() as connection:
        (entry,) = connection.execute(
            sa.select(disclosures.c.entry).where(
                disclosures.c.partner == "FRA", disclosures.c.object_id == REPORT
            )
        ).scalars()
    assert notified["entry"] == entry


def _notice(node: Node) -> dict:
    with node.engine.connect() as connection:
        body = connection.execute(
            sa.select(objects.c.body).where(objects.c.type == NOTICE_TYPE)
        ).scalar_one()
    return json.loads(body)


def test_a_forged_notice_is_refused_with_the_reason(linked):
    with write_transaction(linked.can.engine) as connection:
        grant(connection, REPORT, "USA", ["FRA"])
    pull(linked.usa, "can")
    push(linked.usa, "fra")
    genuine = sign(_notice(linked.usa), Signer(linked.usa.identity_id, _key(linked.usa)))
    usa_key = Signer(linked.usa.identity_id, _key(linked.usa))
    edited = sign({**genuine, "recipient": "GBR"}, usa_key)  # re-signed, but the entry says FRA
    forged = sign({**genuine, "ledger_entry": 0}, Signer(linked.usa.identity_id, _key(linked.fra)))
    reasons = []
    for bad in (edited, forged):
        (status,) = import_objects(linked.can.engine, [bad], received_from="USA").statuses
        assert status.status == "rejected"
        reasons.append(status.messages[0])
    assert "records another disclosure" in reasons[0]
    assert "signature does not verify" in reasons[1]
    (status,) = import_objects(linked.can.engine, [genuine], received_from="USA").statuses
    assert status.status == "added"


def test_an_onward_release_no_consent_covers_is_flagged(linked):
    # A TLP:CLEAR object of Canada's: the USA's policy may pass it on without a consent.
    clear = {
        **_report(linked.can)[1],
        "id": "report--9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        "object_marking_refs": ["marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"],
    }
    import_objects(linked.can.engine, [clear])
    _sync(linked.usa)
    with linked.can.engine.connect() as connection:
        chain = onward_chain(connection, clear["id"])
    (onward,) = [r for r in chain if r.via == "notice"]
    assert (onward.sender, onward.recipient, onward.consent) == ("USA", "FRA", None)
    assert onward.verified and not onward.covered


def _requests(node: Node) -> dict[str, dict]:
    with node.engine.connect() as connection:
        return {r.request.id: r.as_json() for r in consent_requests(connection)}


def _consent_entries(node: Node) -> list[dict]:
    with node.engine.connect() as connection:
        return [e.content for e in entries(connection, kind="consent")]


def test_the_usa_asks_canada_for_consent_and_canada_answers(linked):
    pull(linked.usa, "can")
    with write_transaction(linked.usa.engine) as connection:
        asked = ask(connection, REPORT, ["FRA"], reason="France leads the follow-up")
        refused = ask(connection, REPORT, ["NATO"])
    push(linked.usa, "can")
    at_canada = _requests(linked.can)
    assert at_canada[asked.id]["state"] == "open" and at_canada[asked.id]["requester"] == "USA"
    assert at_canada[asked.id]["reason"] == "France leads the follow-up"
    with write_transaction(linked.can.engine) as connection:
        given = answer(connection, asked.id)
        no = answer(connection, refused.id, refused=True)
    _sync(linked.usa)
    at_usa = _requests(linked.usa)
    assert (at_usa[asked.id]["state"], at_usa[asked.id]["answer"]) == ("granted", given.id)
    assert (at_usa[refused.id]["state"], at_usa[refused.id]["answer"]) == ("refused", no.id)
    assert _explain(linked.usa, "FRA").decision.released
    assert len(_held(linked.fra, REPORT)) == 1
    # The request and the answers are ledger entries, on each side.
    assert [e["action"] for e in _consent_entries(linked.usa)] == ["request", "request"]
    answers = [(e["action"], e["request"]) for e in _consent_entries(linked.can)]
    assert answers == [("grant", asked.id), ("refuse", refused.id)]
    with write_transaction(linked.can.engine) as connection, pytest.raises(InputError):
        answer(connection, asked.id)  # already answered
