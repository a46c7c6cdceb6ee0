"""Pulling from a peer node: the USA's node pulls what Canada's node releases to it, checks
every object's originator signature with the key it pinned, keeps Canada as the owner,
resumes where it stopped, and refuses what a hostile peer sends, saying why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from liaison.errors import PeerFailed
from liaison.node import Node, apply_alliance, init_node, load_signing_key
from liaison.settings import InputLimits, Settings
from liaison.stix.signature import SIGNATURE_EXTENSION
from liaison.store.engine import write_transaction
from liaison.store.ownership import STANDARD
from liaison.store.schema import disclosures, objects, peer_cursors, received_entries
from liaison.taxii import sync as sync_module
from liaison.taxii.credentials import issue_credentials
from liaison.taxii.peers import PeerSecret, add_peer, get_peer
from liaison.taxii.sync import check_ledger, pull, push
from tests.conftest import EXAMPLES, PATIENCE
from tests.taxii.conftest import envelope_objects, rewrite_history, serving


def usa_node(directory: Path, live, extra: str = "") -> Node:
    """A USA node in ``directory`` whose alliance file pins Canada's key (and ``extra``)."""
    settings = Settings(
        home=directory / "home",
        database_url=f"sqlite:///{directory / 'usa.db'}",
        limits=InputLimits(),
        validation_workers=1,
    )
    node, _ = init_node(settings, "USA", "United States node")
    alliance = directory / "alliance.toml"
    alliance.write_text(
        '[node]\ncountry = "USA"\nname = "United States node"\n\n'
        '[[partners]]\ncountry = "CAN"\nname = "Canada"\nclearance = "CAN:TOP SECRET"\n'
        f'public_key = "{live.node.public_key_hex}"\nidentity = "{live.node.identity_id}"\n' + extra
    )
    apply_alliance(node, alliance)
    return node


@pytest.fixture
def usa(tmp_path: Path, live) -> Node:
    """The USA's node, with Canada's node as a peer (Canada's key pinned)."""
    node = usa_node(tmp_path / "usa", live)
    settings = node.settings
    issued = live.credentials["USA"]
    with write_transaction(node.engine) as connection:
        add_peer(
            connection,
            load_signing_key(settings.home),
            "can",
            live.url,
            "CAN",
            issued.username,
            PeerSecret(issued.password, issued.token),
        )
    yield node
    node.engine.dispose()


def released_to_usa(live) -> dict[str, dict]:
    cid = live.collection_id("intelligence")
    with live.client("USA") as client:
        page = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
    return {o["id"]: o for o in envelope_objects(page)}


def stored(node: Node) -> dict[str, tuple[str, str | None, dict]]:
    with node.engine.connect() as connection:
        rows = connection.execute(
            sa.select(objects.c.id, objects.c.owner, objects.c.received_from, objects.c.body)
        )
        return {oid: (owner, got, json.loads(body)) for oid, owner, got, body in rows}


def test_a_pull_stores_what_the_peer_released_signed_and_owned_by_its_originator(live, usa):
    results = pull(usa, "can")
    received = sum(r.received for r in results)
    expected = {
        oid: obj
        for oid, obj in released_to_usa(live).items()
        if SIGNATURE_EXTENSION in obj.get("extensions", {})
    }
    assert received >= len(expected) > 0
    held = stored(usa)
    for oid, obj in expected.items():
        owner, got, body = held[oid]
        # Kept as received, signature included, owned by Canada and marked as from it.
        assert (owner, got) == ("CAN", "CAN") and body == obj
    # What is not Canada's own comes unsigned from it and is refused, with the reason;
    # nothing else is. TLP 2.0's definitions are known here, and the USA's
    # own objects (given back to it) are the USA's: both skipped.
    refused = {r["id"]: r["reason"] for result in results for r in result.refused}
    own = usa.identity_id
    unsigned_ids = {
        i
        for i, o in released_to_usa(live).items()
        if i not in expected and i not in STANDARD and own not in (i, o.get("created_by_ref"))
    }
    assert own in released_to_usa(live) and own not in refused  # given back, skipped
    assert set(refused) == unsigned_ids
    assert set(refused.values()) <= {"it carries no originator's signature"}


def test_a_second_pull_resumes_at_the_cursor_and_stores_nothing_twice(live, usa):
    first = pull(usa, "can")
    before = stored(usa)
    with usa.engine.connect() as connection:
        cursors = dict(
            connection.execute(
                sa.select(peer_cursors.c.collection, peer_cursors.c.added_after)
            ).all()
        )
    assert cursors and all(r.cursor == cursors[r.collection] for r in first if r.cursor)
    again = pull(usa, "can")
    assert sum(r.received for r in again) == 0 and stored(usa) == before


def test_a_forged_or_edited_object_is_refused_with_the_reason(live, usa):
    genuine = next(
        o for o in released_to_usa(live).values() if SIGNATURE_EXTENSION in o.get("extensions", {})
    )
    edited = {**genuine, "object_marking_refs": []}  # a marking stripped on the way
    root = f"{live.url}/api/"

    def peer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/taxii2/":
            return httpx.Response(200, json={"default": root, "api_roots": [root]})
        if request.url.path == "/api/collections/":
            return httpx.Response(200, json={"collections": [{"id": "c1", "can_read": True}]})
        headers = {"X-TAXII-Date-Added-Last": "2026-12-07T00:00:00.000000Z"}
        return httpx.Response(200, json={"more": False, "objects": [edited]}, headers=headers)

    (result,) = pull(usa, "can", transport=httpx.MockTransport(peer))
    assert result.received == 0
    assert result.refused == [
        {
            "id": genuine["id"],
            "reason": "its signature does not verify: the object or its markings changed "
            "after signing",
        }
    ]
    assert genuine["id"] not in stored(usa)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (httpx.Response(500, text="boom"), "answered 500"),
        (httpx.Response(200, text="<html>"), "not TAXII JSON"),
        (httpx.Response(401), "refused this node's credentials"),
        (httpx.Response(200, json={"objects": "x"}), "'objects' is not a list"),
    ],
)
def test_a_peer_that_fails_is_a_clear_error_and_nothing_is_stored(live, usa, answer, message):
    before = stored(usa)
    with pytest.raises(PeerFailed, match=message):
        pull(usa, "can", transport=httpx.MockTransport(lambda request: answer))
    assert stored(usa) == before


def test_a_peer_that_is_down_is_a_clear_error(usa):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(PeerFailed, match="connection refused"):
        pull(usa, "can", transport=httpx.MockTransport(down))


def test_an_api_root_elsewhere_is_refused(live, usa):
    def peer(request: httpx.Request) -> httpx.Response:
        other = "https://elsewhere.example/api/"
        return httpx.Response(200, json={"default": other, "api_roots": [other]})

    with pytest.raises(PeerFailed, match="not on"):
        pull(usa, "can", transport=httpx.MockTransport(peer))


def test_liaison_sync_json_names_what_each_peer_gave_and_refused(live, cli, tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "usa-cli"))
    assert cli("init", "--country", "USA", "--name", "United States node").exit_code == 0
    alliance = tmp_path / "alliance.toml"
    alliance.write_text(
        '[node]\ncountry = "USA"\nname = "United States node"\n\n'
        '[[partners]]\ncountry = "CAN"\nname = "Canada"\nclearance = "CAN:TOP SECRET"\n'
        f'public_key = "{live.node.public_key_hex}"\nidentity = "{live.node.identity_id}"\n'
    )
    assert cli("alliance", "load", str(alliance)).exit_code == 0
    issued = tmp_path / "issued.json"
    issued.write_text(json.dumps({**live.credentials["USA"].as_json(), "partner": "USA"}))
    added = cli(
        "peer", "add", "can", "--url", live.url, "--partner", "CAN", "--credentials", issued
    )
    assert added.exit_code == 0, added.stderr
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stderr
    (peer,) = json.loads(result.stdout)
    assert set(peer) == {
        "peer",
        "received",
        "refused",
        "sent",
        "refused_by_peer",
        "checkpoint",
        "collections",
        "pushed",
    }
    # Canada's node lets the USA write to "intelligence": the USA's node pushes what it
    # originated, here only its own identity, and Canada's node takes it.
    assert peer["peer"] == "can" and peer["received"] > 0
    assert peer["sent"] == 1 and peer["refused_by_peer"] == []
    assert all(set(r) == {"id", "reason"} for r in peer["refused"])
    again = json.loads(cli("sync", "can", "--json").stdout)
    assert again[0]["received"] == 0 and again[0]["sent"] == 0
    assert cli("sync", "nope").exit_code == 2
    # A peer that is down: reported, exit 1, JSON still only JSON.
    assert cli("peer", "add", "gone", "--url", "http://127.0.0.1:9", "--partner", "CAN",
               "--credentials", issued).exit_code == 0  # fmt: skip
    down = cli("sync", "gone", "--json")
    assert down.exit_code == 1
    (failed,) = json.loads(down.stdout)
    assert failed["peer"] == "gone" and "gone" in failed["error"]


@pytest.fixture
def usa_server(tmp_path: Path, live):
    """The USA's node serving TAXII, with a collection Canada may write to; Canada's node has
    it as peer "usa" (the USA's key pinned in Canada's alliance file)."""
    node = usa_node(
        tmp_path / "usa-server",
        live,
        '\n[[collections]]\nalias = "from-allies"\ntitle = "From allies"\n'
        'read = ["CAN"]\nwrite = ["CAN"]\n',
    )
    with write_transaction(node.engine) as connection:
        issued = issue_credentials(connection, "CAN")
    # Canada pins the USA's key, then adds its node as a peer.
    text = (EXAMPLES / "alliance.toml").read_text()
    usa = 'agreement = "UKUSA agreement (Five Eyes)"\n'
    pinned = text.replace(usa, usa + f'public_key = "{node.public_key_hex}"\n', 1)
    (tmp_path / "can.toml").write_text(pinned)
    apply_alliance(live.node, tmp_path / "can.toml")
    with serving(node) as url:
        with write_transaction(live.node.engine) as connection:
            add_peer(
                connection,
                load_signing_key(live.node.settings.home),
                "usa",
                url,
                "USA",
                issued.username,
                PeerSecret(issued.password, issued.token),
            )
        yield node
    node.engine.dispose()


def test_a_push_sends_the_partners_copies_through_the_release_path(live, usa_server):
    (pushed,) = push(live.node, "usa")
    assert pushed.sent > 0
    held = stored(usa_server)
    with live.node.engine.connect() as connection:
        disclosed = {
            oid
            for (oid,) in connection.execute(
                sa.select(disclosures.c.object_id).where(disclosures.c.partner == "USA")
            )
        }
    # What the USA's node holds from Canada: Canada's copies for the USA, signed, each one
    # recorded in Canada's ledger as disclosed to the USA; Canada the owner.
    from_can = {oid: v for oid, v in held.items() if v[1] == "CAN"}
    assert len(from_can) == pushed.sent
    for oid, (owner, _, body) in from_can.items():
        assert owner == "CAN" and oid in disclosed
        assert SIGNATURE_EXTENSION in body["extensions"]
    released = released_to_usa(live)  # the same copies a TAXII read gives the USA
    assert all(released[oid] == body for oid, (_, _, body) in from_can.items())
    again = push(live.node, "usa")
    assert sum(p.sent for p in again) == 0 and stored(usa_server) == held


def test_each_sync_checks_the_peers_ledger_and_a_rewritten_one_is_reported(live, usa):
    pull(usa, "can")
    first = check_ledger(usa, "can")
    assert (first.state, first.detail) == ("consistent", None) and first.size > 0
    with usa.engine.connect() as connection:
        assert get_peer(connection, "can").ledger == first

    def hide_usa(body):
        if body.get("partner") == "USA" and body.get("kind") == "disclosure":
            body["partner"] = "GBR"
        return body

    rewrite_history(live.node.engine, hide_usa)
    with live.client("FRA") as client:  # the rewritten log grows past what the USA saw
        client.get(f"/api/collections/{live.collection_id('intelligence')}/objects/")
    second = check_ledger(usa, "can")
    assert second.state == "rewritten" and "rewrote its log" in second.detail
    with usa.engine.connect() as connection:
        assert get_peer(connection, "can").ledger.state == "rewritten"


# A pull that is killed (SIGKILL, no clean-up) when the third page of objects arrives, before
# it is stored: pages of 20, so that the demo's objects take several.
DYING_PULL = """
import os, signal, httpx
import liaison.taxii.sync as sync
from liaison.node import open_node
from liaison.settings import Settings

sync.PAGE = 20
pages = 0

class Dying(httpx.HTTPTransport):
    def handle_request(self, request):
        global pages
        response = super().handle_request(request)
        if request.url.path.endswith("/objects/"):
            pages += 1
            if pages == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        return response

sync.pull(open_node(Settings.from_env()), "can", transport=Dying())
"""


def test_a_pull_killed_mid_sync_resumes_with_nothing_lost_or_doubled(live, usa, monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIAISON_")}
    env.update(LIAISON_HOME=str(usa.settings.home), LIAISON_DATABASE_URL=usa.settings.database_url)
    died = subprocess.run(
        [sys.executable, "-c", DYING_PULL], env=env, capture_output=True, timeout=PATIENCE
    )
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    # Two whole pages stored, each with its cursor; the third not at all.
    with usa.engine.connect() as connection:
        kept = connection.execute(sa.select(peer_cursors.c.added_after)).scalars().all()
    assert len(kept) == 1
    partial = stored(usa)
    monkeypatch.setattr(sync_module, "PAGE", 20)
    resumed = pull(usa, "can")
    assert sum(r.received for r in resumed) > 0
    held = stored(usa)
    assert set(partial) < set(held)
    expected = {
        oid
        for oid, obj in released_to_usa(live).items()
        if SIGNATURE_EXTENSION in obj.get("extensions", {})
    }
    assert expected <= set(held)  # nothing lost
    with usa.engine.connect() as connection:  # nothing doubled: one version each, as sent
        versions = connection.execute(
            sa.select(objects.c.id, sa.func.count()).group_by(objects.c.id)
        ).all()
    assert all(count == 1 for oid, count in versions if oid in expected)


def test_each_pulled_version_keeps_the_peers_ledger_entry_proved_by_a_receipt(live, usa):
    pull(usa, "can")
    with usa.engine.connect() as connection:
        kept = {
            (oid, version): (partner, entry, size)
            for oid, version, partner, entry, size in connection.execute(
                sa.select(received_entries)
            )
        }
        received = connection.execute(
            sa.select(objects.c.id, objects.c.version).where(objects.c.received_from == "CAN")
        ).all()
    with live.node.engine.connect() as connection:
        recorded = {
            (oid, version): entry
            for oid, version, entry in connection.execute(
                sa.select(
                    disclosures.c.object_id, disclosures.c.version, disclosures.c.entry
                ).where(disclosures.c.partner == "USA")
            )
        }
    assert received and set(kept) == {tuple(r) for r in received}
    for key, (partner, entry, size) in kept.items():
        # The entry Canada's node recorded for that copy, inside the checkpoint it proved.
        assert (partner, entry) == ("CAN", recorded[key]) and entry < size


def test_a_receipt_that_does_not_verify_fails_the_pull_before_its_cursor_moves(live, usa):
    genuine = next(
        o for o in released_to_usa(live).values() if SIGNATURE_EXTENSION in o.get("extensions", {})
    )
    root = f"{live.url}/api/"
    with live.client("USA") as client:  # a receipt of another tree, its proof edited
        real = client.get("/api/ledger/checkpoint/").json()["checkpoint"]

    def peer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/taxii2/":
            return httpx.Response(200, json={"default": root, "api_roots": [root]})
        if request.url.path == "/api/collections/":
            return httpx.Response(200, json={"collections": [{"id": "c1", "can_read": True}]})
        if request.url.path == "/api/ledger/receipts/":
            entry = json.dumps({"kind": "disclosure", "seq": 0})
            item = {"seq": 0, "entry": entry, "inclusion_proof": []}
            return httpx.Response(200, json={"checkpoint": real, "tree_size": 1, "entries": [item]})
        headers = {
            "X-TAXII-Date-Added-Last": "2026-12-07T00:00:00.000000Z",
            "X-Liaison-Ledger-Entries": "0",
        }
        return httpx.Response(200, json={"more": False, "objects": [genuine]}, headers=headers)

    with pytest.raises(PeerFailed, match="its receipt does not verify"):
        pull(usa, "can", transport=httpx.MockTransport(peer))
    with usa.engine.connect() as connection:
        assert connection.execute(sa.select(peer_cursors)).all() == []
        assert connection.execute(sa.select(received_entries)).all() == []
