"""TAXII 2.1 conformance of the live server: the reference client, and raw HTTP for errors."""

import hashlib
import json

import pytest
import sqlalchemy as sa
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages

from liaison.alliance import Collection as CollectionConfig
from liaison.fingerprint.copies import fingerprint_secret, mark
from liaison.importer import import_objects
from liaison.ledger.disclosures import disclosures_of
from liaison.markings.tlp import TLP_CLEAR
from liaison.node import load_signing_key
from liaison.policy.explain import explain
from liaison.stix.signature import unsigned, verify
from liaison.store.alliance import (
    read_collections,
    read_communities,
    read_partners,
    save_alliance,
)
from liaison.store.engine import write_transaction
from liaison.store.objects import latest_versions
from liaison.store.ownership import STANDARD
from liaison.store.schema import objects
from tests.stix_factory import indicator, invalid_indicator
from tests.taxii.conftest import envelope_objects

TAXII = "application/taxii+json;version=2.1"


def expected_copies(live, partner):
    """What the policy says the partner may receive (the per-object, uncompiled path), in the
    partner's own wording (its fingerprint)."""
    secret = fingerprint_secret(load_signing_key(live.node.settings.home))
    with live.node.engine.connect() as connection:
        ids = [s.object["id"] for s in latest_versions(connection)]
        results = [explain(connection, oid, partner) for oid in ids]
    return {r.object_id: mark(r.copy, partner, secret).object for r in results if r.copy}


def taxii_collection(live, partner, alias="intelligence"):
    issued = live.credentials[partner]
    url = f"{live.url}/api/collections/{live.collection_id(alias)}/"
    return Collection(url, user=issued.username, password=issued.password)


def all_objects(collection, per_request=5, **filters):
    found = []
    for envelope in as_pages(collection.get_objects, per_request=per_request, **filters):
        found.extend(envelope.get("objects", []))
    return found


def test_discovery_api_root_and_collections_with_the_reference_client(live):
    issued = live.credentials["FRA"]
    server = Server(f"{live.url}/taxii2/", user=issued.username, password=issued.password)
    assert server.title == "Liaison node CAN"
    (root,) = server.api_roots
    assert isinstance(root, ApiRoot) and TAXII in root.versions
    aliases = {c.alias: c for c in root.collections}
    assert set(aliases) == {"intelligence", "reports"}
    assert aliases["intelligence"].can_read and not aliases["intelligence"].can_write
    usa = Server(
        f"{live.url}/taxii2/",
        user=live.credentials["USA"].username,
        password=live.credentials["USA"].password,
    )
    usa_rights = {c.alias: c.can_write for c in usa.api_roots[0].collections}
    assert usa_rights == {"intelligence": True, "reports": False}


@pytest.mark.parametrize("partner", ["USA", "FRA", "TUR"])
def test_each_partner_sees_exactly_its_view(live, partner):
    got = all_objects(taxii_collection(live, partner))
    expected = expected_copies(live, partner)
    assert {o["id"] for o in got} == set(expected)
    node = {live.node.identity_id: live.node.public_key}
    with live.node.engine.connect() as connection:
        owners = dict(connection.execute(sa.select(objects.c.id, objects.c.owner)).all())
    for obj in got:
        # What the node originated comes signed by it, over the copy as received.
        ours = owners[obj["id"]] == live.node.country and obj["id"] not in STANDARD
        assert verify(obj, node).verified == ours
        assert unsigned(obj) == expected[obj["id"]]


def test_views_differ_between_partners(live):
    usa = {o["id"] for o in all_objects(taxii_collection(live, "USA"))}
    alb = {o["id"] for o in all_objects(taxii_collection(live, "ALB"))}
    with live.node.engine.connect() as connection:
        names = {s.object["id"]: s.object.get("name", "") for s in latest_versions(connection)}
    assert any(names[i].startswith("Foreign fighter") for i in usa - alb)  # REL TO FVEY
    assert any(names[i].startswith("eFP Latvia") for i in alb - usa)  # the mission's report


def test_reports_collection_filters_types(live):
    got = all_objects(taxii_collection(live, "FRA", "reports"))
    types = {o["type"] for o in got}
    assert "report" in types and types <= {"report", "note", "grouping"}  # the collection's


def test_pagination_with_limit_next_and_more(live):
    with live.client("USA") as client:
        url = f"/api/collections/{live.collection_id('intelligence')}/objects/"
        first = client.get(url, params={"limit": 4})
        body = json.loads(first.content)
        assert first.status_code == 200 and body["more"] is True and len(body["objects"]) == 4
        assert first.headers["content-type"] == TAXII
        assert first.headers["X-TAXII-Date-Added-First"] <= first.headers["X-TAXII-Date-Added-Last"]
        seen = [o["id"] for o in body["objects"]]
        while body.get("more"):
            page = client.get(url, params={"limit": 4, "next": body["next"]})
            body = json.loads(page.content)
            seen += [o["id"] for o in body.get("objects", [])]
        assert len(seen) == len(set(seen)) == len(expected_copies(live, "USA"))


def test_pagination_while_objects_are_added(live):
    """Objects added between pages come after them: no gap, no duplicate."""
    from liaison.importer import import_objects

    with live.client("USA") as client:
        url = f"/api/collections/{live.collection_id('intelligence')}/objects/"
        body = json.loads(client.get(url, params={"limit": 5}).content)
        seen = [o["id"] for o in body["objects"]]
        import_objects(live.node.engine, [indicator(n) for n in range(3)])  # TLP:CLEAR
        while body.get("more"):
            body = json.loads(client.get(url, params={"limit": 5, "next": body["next"]}).content)
            seen += [o["id"] for o in body.get("objects", [])]
    assert len(seen) == len(set(seen))
    assert seen[-3:] == [indicator(n)["id"] for n in range(3)]


def test_filters(live):
    collection = taxii_collection(live, "USA")
    reports = all_objects(collection, **{"type": "report"})
    assert reports and all(o["type"] == "report" for o in reports)
    some = [reports[0]["id"], reports[1]["id"]]
    by_id = all_objects(collection, id=",".join(some))
    assert sorted(o["id"] for o in by_id) == sorted(some)
    with live.client("USA") as client:
        url = f"/api/collections/{live.collection_id('intelligence')}/objects/"
        everything = json.loads(client.get(url).content)["objects"]
        middle = everything[len(everything) // 2]
        with live.node.engine.connect() as connection:
            added = connection.execute(
                sa.select(objects.c.date_added).where(objects.c.id == middle["id"])
            ).scalar_one()
        from liaison.stix.timestamps import from_micros

        later = json.loads(client.get(url, params={"added_after": from_micros(added)}).content).get(
            "objects", []
        )
        assert [o["id"] for o in later] == [o["id"] for o in everything][len(everything) // 2 + 1 :]
        spec = json.loads(client.get(url, params={"match[spec_version]": "2.0"}).content)
        assert "objects" not in spec and spec["more"] is False


def test_versions_first_last_all(live):
    from liaison.importer import import_objects

    first = indicator(42, modified="2020-01-01T00:00:00.000Z")
    second = indicator(42, modified="2021-01-01T00:00:00.000Z", object_id=first["id"])
    import_objects(live.node.engine, [first, second])
    cid = live.collection_id("intelligence")
    with live.client("FRA") as client:
        base = f"/api/collections/{cid}/objects/{first['id']}/"

        def modified(params):
            return [o["modified"] for o in envelope_objects(client.get(base, params=params))]

        assert modified({}) == [second["modified"]]
        assert modified({"match[version]": "first"}) == [first["modified"]]
        assert modified({"match[version]": "all"}) == [first["modified"], second["modified"]]
        assert modified({"match[version]": first["modified"]}) == [first["modified"]]
        versions = client.get(f"{base}versions/").json()
        assert versions == {"more": False, "versions": [first["modified"], second["modified"]]}
        manifest = client.get(
            f"/api/collections/{cid}/manifest/", params={"match[id]": first["id"]}
        ).json()
        (entry,) = manifest["objects"]
        assert entry["version"] == second["modified"] and entry["media_type"].startswith(
            "application/stix+json"
        )


def test_manifest_lists_only_what_the_partner_may_see(live):
    cid = live.collection_id("intelligence")
    with live.client("FRA") as client:
        manifest = client.get(f"/api/collections/{cid}/manifest/", params={"limit": 1000}).json()
    assert {e["id"] for e in manifest["objects"]} == set(expected_copies(live, "FRA"))


def test_withheld_objects_do_not_exist_for_the_partner(live):
    cid = live.collection_id("intelligence")
    with live.node.engine.connect() as connection:
        secret = next(
            s.object["id"]
            for s in latest_versions(connection, "report")
            if s.object["name"].startswith("Foreign fighter")
        )
    with live.client("FRA") as client:
        for path in (f"objects/{secret}/", f"objects/{secret}/versions/"):
            response = client.get(f"/api/collections/{cid}/{path}")
            assert response.status_code == 404
            assert response.json()["title"] == "Object not found"
        missing = "report--00000000-0000-4000-8000-000000000000"
        assert client.get(f"/api/collections/{cid}/objects/{missing}/").json() == (
            client.get(f"/api/collections/{cid}/objects/{secret}/").json()
            | {"description": f"no object {missing} for you here"}
        )


def test_an_incomplete_copy_is_in_no_listing(live):
    """A granted note whose only reference is withheld would arrive incomplete: the objects,
    manifest and versions endpoints all leave it out alike."""
    cid = live.collection_id("intelligence")
    with live.node.engine.connect() as connection:
        secret = next(
            s.object["id"]
            for s in latest_versions(connection, "report")
            if s.object["name"].startswith("Foreign fighter")
        )
    note = {
        "type": "note",
        "spec_version": "2.1",
        "id": "note--5d0c1a8e-8f0a-4c5e-9a51-0b6a1b7e9f10",
        "created": "2025-03-01T00:00:00.000Z",
        "modified": "2025-03-01T00:00:00.000Z",
        "content": "Follow-up on the report.",
        "object_refs": [secret],
        "object_marking_refs": [TLP_CLEAR],
    }
    assert not import_objects(live.node.engine, [note], workers=1).rejected
    with live.client("FRA") as client:
        base = f"/api/collections/{cid}"
        listed = envelope_objects(client.get(f"{base}/objects/", params={"limit": 1000}))
        manifest = client.get(f"{base}/manifest/", params={"limit": 1000}).json()
        versions = client.get(f"{base}/objects/{note['id']}/versions/")
    assert note["id"] not in {o["id"] for o in listed}
    assert note["id"] not in {e["id"] for e in manifest.get("objects", [])}
    assert versions.status_code == 404
    with live.client("USA") as client:  # USA sees the report, so the note goes whole
        assert client.get(f"{base}/objects/{note['id']}/versions/").status_code == 200


def test_every_delivered_copy_is_a_recorded_disclosure(live):
    cid = live.collection_id("intelligence")
    with live.client("TUR") as client:
        response = client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
    raw = response.content
    delivered = json.loads(raw)["objects"]
    with live.node.engine.connect() as connection:
        rows = disclosures_of(connection, "TUR")
    assert {r.object_id for r in rows} == {o["id"] for o in delivered}
    for obj in delivered:
        exact = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        assert exact in raw  # the bytes hashed are the bytes sent
        digest = hashlib.sha256(exact).hexdigest()
        assert any(r.object_id == obj["id"] and r.digest == digest for r in rows)
    with live.client("TUR") as client:
        client.get(f"/api/collections/{cid}/objects/", params={"limit": 1000})
    with live.node.engine.connect() as connection:
        assert len(disclosures_of(connection, "TUR")) == len(rows)  # first time only


def test_post_objects_and_status(live):
    cid = live.collection_id("intelligence")
    with live.node.engine.connect() as connection:
        (usa,) = [p for p in read_partners(connection) if p.country == "USA"]
    good = dict(indicator(900), created_by_ref=usa.identity)
    claims_node = dict(indicator(901), created_by_ref=live.node.identity_id)
    envelope = {"objects": [good, invalid_indicator(902), claims_node]}
    with live.client("USA", **{"Content-Type": TAXII}) as client:
        response = client.post(f"/api/collections/{cid}/objects/", content=json.dumps(envelope))
        assert response.status_code == 202
        status = response.json()
        assert status["status"] == "complete"
        assert (status["success_count"], status["failure_count"]) == (1, 2)
        assert {f["id"] for f in status["failures"]} == {
            invalid_indicator(902)["id"],
            claims_node["id"],
        }
        assert client.get(f"/api/status/{status['id']}/").json() == status
    with live.client("FRA") as client:
        assert client.get(f"/api/status/{status['id']}/").status_code == 404
    with live.node.engine.connect() as connection:
        row = connection.execute(
            sa.select(objects.c.received_from, objects.c.created_by_ref).where(
                objects.c.id == good["id"]
            )
        ).one()
    assert row.received_from == "USA" and row.created_by_ref == good["created_by_ref"]


def test_delete_only_what_the_partner_sent(live):
    cid = live.collection_id("intelligence")
    mine = indicator(950)
    del mine["created_by_ref"]  # USA's own
    with live.client("USA", **{"Content-Type": TAXII}) as client:
        client.post(f"/api/collections/{cid}/objects/", content=json.dumps({"objects": [mine]}))
        assert client.delete(f"/api/collections/{cid}/objects/{mine['id']}/").status_code == 200
        node_report = live.node.identity_id
        refused = client.delete(f"/api/collections/{cid}/objects/{node_report}/")
        assert refused.status_code == 404
    with live.client("FRA") as client:
        forbidden = client.delete(f"/api/collections/{cid}/objects/{mine['id']}/")
        assert forbidden.status_code == 403


@pytest.mark.parametrize(
    ("request_kwargs", "status", "title"),
    [
        ({"auth": None}, 401, "Unauthorized"),
        ({"auth": ("usa-nobody", "wrong")}, 401, "Unauthorized"),
        ({"auth": None, "headers": {"Authorization": "Bearer lsn_0000_nope"}}, 401, "Unauthorized"),
        ({"auth": None, "headers": {"Authorization": "Basic !!!"}}, 401, "Unauthorized"),
        ({"headers": {"Accept": "text/html"}}, 406, "Not acceptable"),
        ({"params": {"next": "forged.cursor"}}, 400, "Invalid next"),
        ({"params": {"added_after": "yesterday"}}, 400, "Bad input"),
        ({"params": {"limit": "0"}}, 400, "Bad request"),
        ({"params": {"limit": "many"}}, 400, "Bad request"),
    ],
)
def test_errors_are_taxii_error_bodies(live, request_kwargs, status, title):
    cid = live.collection_id("intelligence")
    with live.client("USA") as client:
        response = client.get(f"/api/collections/{cid}/objects/", **request_kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == TAXII
    body = response.json()
    assert body["title"] == title and body["http_status"] == str(status)


def test_token_authentication_and_rotation(live):
    from liaison.store.engine import write_transaction
    from liaison.taxii.credentials import issue_credentials

    old = live.credentials["FRA"]
    with live.client(None, Authorization=f"Bearer {old.token}") as client:
        assert client.get("/api/").status_code == 200
    with write_transaction(live.node.engine) as connection:
        new = issue_credentials(connection, "FRA")
    with live.client(None, Authorization=f"Bearer {old.token}") as client:
        assert client.get("/api/").status_code == 401
    with live.client(None, Authorization=f"Bearer {new.token}") as client:
        assert client.get("/api/").status_code == 200


def test_write_errors(live):
    cid = live.collection_id("intelligence")
    reports = live.collection_id("reports")
    body = json.dumps({"objects": [indicator(1)]})
    with live.client("USA", **{"Content-Type": "application/json"}) as client:
        assert client.post(f"/api/collections/{cid}/objects/", content=body).status_code == 415
    with live.client("USA", **{"Content-Type": TAXII}) as client:
        assert client.post(f"/api/collections/{reports}/objects/", content=body).status_code == 403
        huge = b'{"objects": [' + b" " * (21 * 1024 * 1024) + b"]}"
        response = client.post(f"/api/collections/{cid}/objects/", content=huge)
        assert response.status_code == 413 and response.json()["http_status"] == "413"
        bad = client.post(f"/api/collections/{cid}/objects/", content=b"{not json")
        assert bad.status_code == 400
    with live.client("FRA", **{"Content-Type": TAXII}) as client:
        assert client.post(f"/api/collections/{cid}/objects/", content=body).status_code == 403


def test_unknown_and_forbidden_collections_look_the_same(live):
    fvey_only = CollectionConfig(alias="fvey-only", read=("FVEY",))
    with write_transaction(live.node.engine) as connection:
        save_alliance(
            connection,
            tuple(read_partners(connection)),
            tuple(read_communities(connection)),
            (*read_collections(connection), fvey_only),
        )
    unknown_id = "00000000-0000-4000-8000-000000000000"
    with live.client("TUR") as client:
        unknown = client.get(f"/api/collections/{unknown_id}/objects/")
        forbidden = client.get(f"/api/collections/{fvey_only.id}/objects/")
        listed = {c["alias"] for c in client.get("/api/collections/").json()["collections"]}
        assert client.get("/no/such/path/").json()["http_status"] == "404"
    assert unknown.status_code == forbidden.status_code == 404
    assert forbidden.json() == unknown.json() | {"description": f"no collection {fvey_only.id}"}
    assert "fvey-only" not in listed
    with live.client("USA") as client:
        assert client.get(f"/api/collections/{fvey_only.id}/objects/").status_code == 200


def test_cursor_of_another_partner_is_refused(live):
    cid = live.collection_id("intelligence")
    url = f"/api/collections/{cid}/objects/"
    with live.client("USA") as client:
        token = client.get(url, params={"limit": 2}).json()["next"]
    with live.client("FRA") as client:
        response = client.get(url, params={"limit": 2, "next": token})
    assert response.status_code == 400 and response.json()["title"] == "Invalid next"
