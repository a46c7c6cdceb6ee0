"""`liaison peer add|remove` and `liaison peers`: a partner's node with the credentials its
operator issued to this node, kept encrypted at rest, bound to their row."""

import json
import socket

import pytest
import sqlalchemy as sa

from liaison.cli import peers as peers_cli
from liaison.errors import NodeConflict
from liaison.node import load_signing_key, open_node
from liaison.settings import Settings
from liaison.store.schema import peers
from liaison.taxii.peers import peer_secret
from liaison.taxii.sync import Schedule
from tests.conftest import EXAMPLES

KEY = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
ISSUED = {"partner": "CAN", "username": "can-7f3a", "password": "s3cret-pw", "token": "lsn_x_y"}


def pin_usa(run, tmp_path):
    alliance = tmp_path / "alliance.toml"
    usa = 'agreement = "UKUSA agreement (Five Eyes)"\n'
    text = (EXAMPLES / "alliance.toml").read_text()
    alliance.write_text(text.replace(usa, usa + f'public_key = "{KEY}"\n', 1))
    assert run("alliance", "load", str(alliance)).exit_code == 0


def credentials_file(tmp_path, **changes):
    path = tmp_path / "usa-credentials.json"
    path.write_text(json.dumps({**ISSUED, **changes}))
    return path


def add_usa(run, tmp_path, *extra):
    return run(
        "peer", "add", "usa", "--url", "https://usa.example:9443/", "--partner", "usa",
        "--credentials", str(credentials_file(tmp_path)), *extra,
    )  # fmt: skip


def test_a_peer_is_listed_without_its_secrets_which_are_encrypted(demo, tmp_path):
    pin_usa(demo, tmp_path)
    added = add_usa(demo, tmp_path, "--json")
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["url"] == "https://usa.example:9443"
    (listed,) = json.loads(demo("peers", "--json").stdout)
    assert listed["name"] == "usa" and listed["partner"] == "USA"
    assert listed["public_key"] == KEY and listed["username"] == "can-7f3a"
    assert "s3cret-pw" not in json.dumps(listed)
    assert "usa" in demo("peers").stdout
    node = open_node(Settings.from_env())
    key = load_signing_key(node.settings.home)
    with node.engine.connect() as connection:
        stored = connection.execute(sa.select(peers.c.secret)).scalar_one()
        assert "s3cret-pw" not in stored and "lsn_x_y" not in stored
        secret = peer_secret(connection, key, "usa")
    assert (secret.password, secret.token) == ("s3cret-pw", "lsn_x_y")


def test_a_stored_secret_moved_or_edited_no_longer_decrypts(demo, tmp_path):
    pin_usa(demo, tmp_path)
    assert add_usa(demo, tmp_path).exit_code == 0
    node = open_node(Settings.from_env())
    with node.engine.begin() as connection:
        connection.execute(peers.update().values(url="https://attacker.example"))
    with node.engine.connect() as connection, pytest.raises(NodeConflict, match="do not decrypt"):
        peer_secret(connection, load_signing_key(node.settings.home), "usa")


def test_a_peer_needs_a_known_partner_with_a_pinned_key(demo, tmp_path):
    unpinned = add_usa(demo, tmp_path)
    assert unpinned.exit_code == 2 and "no public_key" in unpinned.stderr
    unknown = demo(
        "peer", "add", "x", "--url", "https://x.example", "--partner", "BRA",
        "--credentials", str(credentials_file(tmp_path)),
    )  # fmt: skip
    assert unknown.exit_code == 2 and "no partner BRA" in unknown.stderr
    assert json.loads(demo("peers", "--json").stdout) == []


def test_bad_credentials_names_and_urls_are_one_line_errors(demo, tmp_path):
    pin_usa(demo, tmp_path)
    other = demo(
        "peer", "add", "usa", "--url", "https://usa.example", "--partner", "USA",
        "--credentials", str(credentials_file(tmp_path, partner="FRA")),
    )  # fmt: skip
    assert other.exit_code == 2 and "issued to FRA, not to this node (CAN)" in other.stderr
    bad_url = demo(
        "peer", "add", "usa", "--url", "ftp://usa", "--partner", "USA",
        "--credentials", str(credentials_file(tmp_path)),
    )  # fmt: skip
    assert bad_url.exit_code == 2 and "expected http(s)" in bad_url.stderr
    assert add_usa(demo, tmp_path).exit_code == 0
    again = add_usa(demo, tmp_path)
    assert again.exit_code == 2 and "exists" in again.stderr
    assert demo("peer", "remove", "usa").exit_code == 0
    assert demo("peer", "remove", "usa").exit_code == 2
    assert json.loads(demo("peers", "--json").stdout) == []


def test_without_a_credentials_file_the_username_and_password_are_asked(demo, tmp_path):
    pin_usa(demo, tmp_path)
    added = demo(
        "peer", "add", "usa", "--url", "https://usa.example", "--partner", "USA",
        input="can-7f3a\ns3cret-pw\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    assert "s3cret-pw" not in added.stdout  # asked without echo
    node = open_node(Settings.from_env())
    with node.engine.connect() as connection:
        secret = peer_secret(connection, load_signing_key(node.settings.home), "usa")
    assert secret.password == "s3cret-pw"
    (listed,) = json.loads(demo("peers", "--json").stdout)
    assert listed["username"] == "can-7f3a"


def test_sync_watch_backs_off_a_failing_peer_and_stops_on_interrupt(demo, tmp_path, monkeypatch):
    pin_usa(demo, tmp_path)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
    port = closed.getsockname()[1]
    added = demo(
        "peer", "add", "usa", "--url", f"http://127.0.0.1:{port}", "--partner", "USA",
        "--credentials", str(credentials_file(tmp_path)),
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    clock = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            raise KeyboardInterrupt
        clock[0] += seconds

    monkeypatch.setattr(peers_cli.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(peers_cli.time, "sleep", sleep)
    try:
        result = demo("sync", "--watch", "--interval", "10", "--json")
    finally:
        closed.close()
    assert result.exit_code == 0, result.stderr
    rounds = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rounds) == 3
    assert all(r["peers"][0]["peer"] == "usa" and "error" in r["peers"][0] for r in rounds)
    assert waits == [20.0, 40.0, 80.0]  # twice the interval after each failure in a row
    assert "Stopped." in result.stderr


def test_a_schedule_waits_the_interval_and_backs_off_to_a_ceiling():
    schedule = Schedule(interval=60, longest=300)
    assert schedule.ready(["a", "b"], 0) == ["a", "b"]
    schedule.record("a", True, 0)
    schedule.record("b", False, 0)
    assert schedule.wait(["a", "b"], 0) == 60
    assert schedule.ready(["a", "b"], 60) == ["a"]
    for _ in range(5):
        schedule.record("b", False, 0)
    assert schedule.due["b"] == 300  # at most `longest`
    schedule.record("b", True, 0)
    assert schedule.due["b"] == 60 and schedule.failures["b"] == 0
