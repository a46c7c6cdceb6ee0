"""`liaison verify`: whether each object of a file carries its originator's signature over
what it says and how it is marked, with the keys the node pinned (its own and the alliance
file's)."""

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaison.alliance import Partner
from liaison.stix.signature import Signer, sign
from tests.cli.test_disclose_cli import report_id
from tests.conftest import EXAMPLES

USA_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def disclosed(demo, tmp_path, partner="USA"):
    rid = report_id(demo, "Trudeau says Canada")
    out = tmp_path / f"{partner}.json"
    assert demo("disclose", rid, "--partner", partner, "-o", str(out)).exit_code == 0
    return out


def test_a_disclosed_copy_verifies_with_the_nodes_key(demo, tmp_path):
    out = disclosed(demo, tmp_path)
    result = demo("verify", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    (verdict,) = json.loads(result.stdout)
    node = json.loads(demo("node", "--json").stdout)
    assert verdict == {
        "object": json.loads(out.read_text())["id"],
        "type": "report",
        "signer": node["id"],
        "originator": "CAN",
        "verified": True,
        "reason": None,
    }
    assert "yes" in demo("verify", str(out)).stdout


def test_a_copy_whose_markings_changed_is_refused(demo, tmp_path):
    out = disclosed(demo, tmp_path)
    copy = json.loads(out.read_text())
    copy["object_marking_refs"] = copy["object_marking_refs"][:-1]  # a marking removed
    out.write_text(json.dumps(copy))
    result = demo("verify", str(out), "--json")
    assert result.exit_code == 1
    (verdict,) = json.loads(result.stdout)
    assert not verdict["verified"] and "changed after signing" in verdict["reason"]
    human = demo("verify", str(out))
    assert human.exit_code == 1 and "no" in human.stdout


def test_a_partners_key_pinned_in_the_alliance_file_verifies_its_objects(demo, tmp_path):
    public = USA_KEY.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    alliance = tmp_path / "alliance.toml"
    text = (EXAMPLES / "alliance.toml").read_text()
    usa = 'agreement = "UKUSA agreement (Five Eyes)"\n'
    alliance.write_text(text.replace(usa, usa + f'public_key = "{public.hex()}"\n', 1))
    assert demo("alliance", "load", str(alliance)).exit_code == 0
    identity = Partner(country="USA", name="USA", clearance="USA:TS").identity
    note = {
        "type": "note",
        "spec_version": "2.1",
        "id": "note--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0009",
        "created": "2026-12-01T00:00:00.000Z",
        "modified": "2026-12-01T00:00:00.000Z",
        "created_by_ref": identity,
        "content": "Seen in Riga.",
        "object_refs": [identity],
    }
    fra = Partner(country="FRA", name="FRA", clearance="NATO:NS").identity
    bundle = {
        "type": "bundle",
        "id": "bundle--0b3c0d6f-6e2c-4f6b-9b43-6c3d1f0a0010",
        "objects": [
            sign(note, Signer(identity, USA_KEY)),
            sign({**note, "created_by_ref": fra}, Signer(fra, USA_KEY)),  # no key pinned
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    result = demo("verify", str(path), "--json")
    assert result.exit_code == 1
    usa_verdict, fra_verdict = json.loads(result.stdout)
    assert usa_verdict["verified"] and usa_verdict["originator"] == "USA"
    assert not fra_verdict["verified"] and "no public key is pinned" in fra_verdict["reason"]


def test_a_public_key_that_is_not_one_is_a_config_error(demo, tmp_path):
    alliance = tmp_path / "alliance.toml"
    text = (EXAMPLES / "alliance.toml").read_text()
    usa = 'agreement = "UKUSA agreement (Five Eyes)"\n'
    alliance.write_text(text.replace(usa, usa + 'public_key = "abc"\n', 1))
    result = demo("alliance", "load", str(alliance))
    assert result.exit_code == 2
    assert "64 hex digits" in result.stderr
