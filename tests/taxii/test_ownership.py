"""What is ours stays ours: a writing partner attacks the node's objects over TAXII, and
every partner's view is what it was; each partner's view is consistent; match[version] and
DELETE as TAXII 2.1 specifies them."""

import copy
import json

import pytest
from stix2 import TAXIICollectionStore
from taxii2client.v21 import Collection

from liaison.importer import import_objects
from liaison.markings.handling import handling_extension
from liaison.markings.tlp import TLP_CLEAR
from liaison.store.alliance import read_partners
from liaison.store.engine import write_transaction
from liaison.store.objects import versions_of
from liaison.taxii.credentials import issue_credentials
from tests.taxii.conftest import envelope_objects

TAXII = "application/taxii+json;version=2.1"
FVEY_REPORT = "report--4c6f9d77-9ad1-504d-ae68-a36d376a6ee8"  # CAN:SECRET REL TO FVEY
SECRET_REL_FVEY = "marking-definition--fb36b983-1002-5dc3-89e2-f0f5c0f6252b"
NATO_SUMMIT = "report--70d09b66-ce21-5ba5-b098-4dced41c5acf"  # TLP:GREEN, the node's
US_REPORT = "report--cfc7efe8-65b4-55f3-92c5-81ee4f9e5577"  # USA's, under ORCON
CAN_EYES_ONLY = "marking-definition--afee7285-1cdf-5058-bb58-8099e134ca83"
LATER = "2030-01-01T00:00:00.000Z"
VIEWERS = ("USA", "FRA", "TUR", "ALB")


def objects_url(live, alias="intelligence"):
    return f"/api/collections/{live.collection_id(alias)}/objects/"


def post(live, partner, *objects, alias="intelligence"):
    with live.client(partner, **{"Content-Type": TAXII}) as client:
        response = client.post(
            objects_url(live, alias), content=json.dumps({"objects": list(objects)})
        )
    assert response.status_code == 202, response.text
    return response.json()


def views(live):
    """Every partner's whole view: (id, version) -> the object, as served."""
    seen = {}
    for partner in VIEWERS:
        with live.client(partner) as client:
            found, params = {}, {"limit": 1000}
            while True:
                response = client.get(objects_url(live), params=params)
                body = json.loads(response.content)
                for obj in body.get("objects", []):
                    found[obj["id"], obj.get("modified")] = obj
                if not body.get("more"):
                    break
                params = {"limit": 1000, "next": body["next"]}
        seen[partner] = found
    return seen


def indicator_version(digit, modified="2026-01-01T00:00:00.000Z", marked=True):
    """A version of an indicator with an id made of ``digit``, TLP:CLEAR unless unmarked."""
    d = digit
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{d * 8}-{d * 4}-4{d * 3}-8{d * 3}-{d * 12}",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": modified,
        "pattern": f"[ipv4-addr:value = '203.0.113.{ord(d)}']",
        "pattern_type": "stix",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    if marked:
        indicator["object_marking_refs"] = [TLP_CLEAR]
    return indicator


def node_object(live, object_id):
    with live.node.engine.connect() as connection:
        (*_, latest) = versions_of(connection, object_id)
    return latest.object


def forged(obj, **changes):
    forgery = copy.deepcopy(obj)
    forgery["modified"] = LATER
    forgery.update(changes)
    return forgery


def test_a_partner_cannot_version_the_nodes_report(live):
    before = views(live)
    report = node_object(live, NATO_SUMMIT)
    without_creator = forged(report, description="USA's text")
    del without_creator["created_by_ref"]
    claiming_node = forged(report, description="USA's text, as Canada")
    status = post(live, "USA", without_creator, claiming_node)
    assert status["success_count"] == 0 and status["failure_count"] == 2
    messages = [f["message"] for f in status["failures"]]
    assert "belongs to CAN" in messages[0]
    assert "names CAN as its originator" in messages[1]
    assert node_object(live, NATO_SUMMIT) == report
    assert views(live) == before


def test_a_partner_cannot_send_an_object_as_another_agency(live):
    with live.node.engine.connect() as connection:
        gbr = next(p for p in read_partners(connection) if p.country == "GBR")
    report = forged(
        node_object(live, NATO_SUMMIT),
        id="report--" + "1" * 8 + "-1111-4111-8111-" + "1" * 12,
        created_by_ref=gbr.identity,
    )
    status = post(live, "USA", report)
    assert status["failure_count"] == 1
    message = status["failures"][0]["message"]
    assert "names GBR as its originator, and it carries no originator's signature" in message
    assert "USA may pass on another agency's object only with that agency's signature" in message
    with live.client("FRA") as client:
        response = client.get(objects_url(live) + report["id"] + "/")
    assert response.status_code == 404


def test_a_partner_cannot_widen_the_nodes_marking_definition(live):
    before = views(live)
    definition = node_object(live, SECRET_REL_FVEY)
    widened = copy.deepcopy(definition)
    del widened["created_by_ref"]
    widened["created"] = LATER
    (extension,) = widened["extensions"].values()
    extension["releasable_to"] = ["NATO"]
    status = post(live, "USA", widened)
    assert status["failure_count"] == 1
    assert "belongs to CAN" in status["failures"][0]["message"]
    assert node_object(live, SECRET_REL_FVEY) == definition
    assert views(live) == before
    assert not any(oid == FVEY_REPORT for oid, _ in before["FRA"])


def test_a_marking_definition_never_changes_even_for_its_owner(live):
    mine = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--" + "2" * 8 + "-2222-4222-8222-" + "2" * 12,
        "created": "2026-01-01T00:00:00.000Z",
        "definition_type": "statement",
        "definition": {"statement": "USA's own statement"},
    }
    assert post(live, "USA", mine)["success_count"] == 1
    changed = dict(mine, created=LATER, definition={"statement": "another"})
    status = post(live, "USA", changed)
    assert "a marking definition never changes" in status["failures"][0]["message"]
    assert post(live, "USA", mine)["successes"][0]["message"] == "already present"


def test_a_partner_cannot_define_a_marking_the_nodes_object_uses(live):
    """The node's report names a marking it has not defined (withheld: unknown). USA then
    defines that marking as releasable to NATO: the node's report stays withheld."""
    pending = "marking-definition--" + "3" * 8 + "-3333-4333-8333-" + "3" * 12
    report = dict(
        node_object(live, NATO_SUMMIT),
        id="report--" + "4" * 8 + "-4444-4444-8444-" + "4" * 12,
        object_marking_refs=[pending],
    )
    assert import_objects(live.node.engine, [report]).count("added") == 1
    definition = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": pending,
        "created": "2026-01-01T00:00:00.000Z",
        "extensions": handling_extension(None, ["NATO"]),
    }
    assert post(live, "USA", definition)["success_count"] == 1
    with live.client("FRA") as client:
        assert client.get(objects_url(live) + report["id"] + "/").status_code == 404


def test_delete_of_the_nodes_object_changes_nothing(live):
    before = views(live)
    with live.client("USA") as client:
        response = client.delete(objects_url(live) + NATO_SUMMIT + "/")
        assert response.status_code == 404
        assert (
            client.delete(
                objects_url(live) + US_REPORT + "/", params={"match[version]": "all"}
            ).status_code
            == 200
        )  # USA's own report, which the operator imported
    after = views(live)
    assert {p: {k for k in v if k[0] != US_REPORT} for p, v in after.items()} == {
        p: {k for k in v if k[0] != US_REPORT} for p, v in before.items()
    }


def test_the_owner_sees_its_own_unmarked_object_with_the_stix2_store(live):
    issued = live.credentials["USA"]
    collection = Collection(
        f"{live.url}{objects_url(live)[: -len('objects/')]}",
        user=issued.username,
        password=issued.password,
    )
    store = TAXIICollectionStore(collection, allow_custom=True)
    indicator = indicator_version("6", marked=False)
    store.add(indicator)
    got = store.get(indicator["id"])
    assert got is not None and got["pattern"] == indicator["pattern"]
    with live.client("FRA") as client:  # unmarked, another's: withheld from others
        assert client.get(objects_url(live) + indicator["id"] + "/").status_code == 404


def versioned_report(live):
    """A node report whose v1 is TLP:CLEAR and whose v2 is CAN EYES ONLY."""
    v1 = dict(
        node_object(live, NATO_SUMMIT),
        id="report--" + "7" * 8 + "-7777-4777-8777-" + "7" * 12,
        created="2026-01-01T00:00:00.000Z",
        modified="2026-01-01T00:00:00.000Z",
        object_marking_refs=[TLP_CLEAR],
    )
    v2 = dict(v1, modified="2026-02-01T00:00:00.000Z", object_marking_refs=[CAN_EYES_ONLY])
    assert import_objects(live.node.engine, [v1, v2]).count("added") == 2
    return v1, v2


def test_each_partner_sees_the_newest_version_it_may_see(live):
    v1, _ = versioned_report(live)
    url = objects_url(live) + v1["id"] + "/"
    with live.client("FRA") as client:
        versions = client.get(url + "versions/").json()
        assert versions["versions"] == [v1["modified"]]
        (got,) = envelope_objects(client.get(url))
        assert got["modified"] == v1["modified"]
        manifest = client.get(objects_url(live)[: -len("objects/")] + "manifest/").json()
        listed = [e for e in manifest["objects"] if e["id"] == v1["id"]]
        assert [e["version"] for e in listed] == [v1["modified"]]
        listing = envelope_objects(client.get(objects_url(live), params={"limit": 1000}))
        assert [o["modified"] for o in listing if o["id"] == v1["id"]] == [v1["modified"]]
        assert client.get(url, params={"match[version]": "first,last"}).status_code == 200


@pytest.mark.parametrize("endpoint", ["object", "objects", "manifest"])
def test_match_version_mixes_keywords_and_timestamps(live, endpoint):
    oid = "indicator--" + "8" * 8 + "-8888-4888-8888-" + "8" * 12
    stamps = [f"2026-0{m}-01T00:00:00.000Z" for m in (1, 2, 3, 4)]
    versions = [indicator_version("8", stamp) for stamp in stamps]
    assert import_objects(live.node.engine, versions).count("added") == 4
    root = objects_url(live)[: -len("objects/")]
    url = {
        "object": objects_url(live) + oid + "/",
        "objects": objects_url(live),
        "manifest": root + "manifest/",
    }[endpoint]
    params = {} if endpoint == "object" else {"match[id]": oid}

    def got(match):
        with live.client("FRA") as client:
            body = client.get(url, params={**params, "match[version]": match}).json()
        key = "version" if endpoint == "manifest" else "modified"
        return sorted(o[key] for o in body.get("objects", []))

    assert got("first,last") == [stamps[0], stamps[3]]
    assert got(f"first,{stamps[2]},last") == [stamps[0], stamps[2], stamps[3]]
    assert got(f"{stamps[1]},all") == stamps
    assert got("last") == [stamps[3]]


def test_delete_honours_match_version(live):
    oid = "indicator--" + "9" * 8 + "-9999-4999-8999-" + "9" * 12
    stamps = ["2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"]
    sent = [indicator_version("9", stamp) for stamp in stamps]
    assert post(live, "USA", *sent)["success_count"] == 3
    url = objects_url(live) + oid + "/"
    with live.client("USA") as client:
        assert client.delete(url, params={"match[version]": "last"}).status_code == 200
        assert client.get(url + "versions/").json()["versions"] == stamps[:2]
        (latest,) = envelope_objects(client.get(url))
        assert latest["modified"] == stamps[1]
        assert client.delete(url, params={"match[version]": stamps[0]}).status_code == 200
        assert client.get(url + "versions/").json()["versions"] == [stamps[1]]
        assert client.delete(url).status_code == 200  # no match[version]: every version
        assert client.get(url).status_code == 404
    with live.node.engine.connect() as connection:
        assert versions_of(connection, oid) == []


def test_another_partner_cannot_touch_usas_object(live):
    with write_transaction(live.node.engine) as connection:
        live.credentials["GBR"] = issue_credentials(connection, "GBR")
    mine = indicator_version("a")
    assert post(live, "USA", mine)["success_count"] == 1
    before = views(live)
    status = post(live, "GBR", forged(mine, description="GBR's text"))
    assert "belongs to USA" in status["failures"][0]["message"]
    with live.client("GBR") as client:
        assert client.delete(objects_url(live) + mine["id"] + "/").status_code == 404
    assert views(live) == before


def test_standard_definitions_are_never_taken_from_a_partner(live):
    from liaison.markings.handling import LIAISON_EXTENSION

    forged_extension = {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": LIAISON_EXTENSION,
        "created": "2026-01-01T00:00:00.000Z",
        "modified": LATER,
        "name": "Liaison handling, as USA would have it",
        "schema": "https://example.org/usa",
        "version": "9.9",
        "extension_types": ["property-extension"],
    }
    tlp = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_CLEAR,
        "created": "2022-10-01T00:00:00.000Z",
        "name": "TLP:CLEAR",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": "red",
            }
        },
    }
    status = post(live, "USA", forged_extension, tlp)
    assert status["success_count"] == 2
    assert all("not taken from a partner" in s["message"] for s in status["successes"])
    with live.node.engine.connect() as connection:
        assert [v.owner for v in versions_of(connection, LIAISON_EXTENSION)] == ["CAN"]
        (clear,) = versions_of(connection, TLP_CLEAR)  # the node's, as the demo stored it
    assert clear.owner == "CAN" and "red" not in json.dumps(clear.object)


def test_a_deleted_definition_withholds_what_it_marked(live):
    """USA's report is released to FRA under USA's own REL TO NATO marking. USA deletes the
    definition: the marking is unknown from then on, and the report is withheld. GBR then
    defines that id: nothing changes for USA's report."""
    with write_transaction(live.node.engine) as connection:
        live.credentials["GBR"] = issue_credentials(connection, "GBR")
    marking = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--" + "b" * 8 + "-bbbb-4bbb-8bbb-" + "b" * 12,
        "created": "2026-01-01T00:00:00.000Z",
        "extensions": handling_extension(None, ["NATO"]),
    }
    report = dict(indicator_version("c"), object_marking_refs=[marking["id"]])
    assert post(live, "USA", marking, report)["success_count"] == 2
    url = objects_url(live) + report["id"] + "/"
    with live.client("FRA") as client:
        assert client.get(url).status_code == 200
    with live.client("USA") as client:
        assert client.delete(objects_url(live) + marking["id"] + "/").status_code == 200
    with live.client("FRA") as client:
        assert client.get(url).status_code == 404
    assert post(live, "GBR", marking)["success_count"] == 1
    with live.client("FRA") as client:
        assert client.get(url).status_code == 404
