import stat

import pytest

from liaison.errors import ConfigError, NodeConflict, NodeNotInitialised
from liaison.node import KEY_FILE, init_node, open_node
from liaison.stix.validate import validation_errors


def test_init_creates_identity_key_and_store(node, settings):
    assert node.country == "CAN"
    identity = node.identity()
    assert identity["type"] == "identity" and identity["id"] == node.identity_id
    assert validation_errors(identity) == []
    key = settings.home / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert node.key_fingerprint.startswith("SHA256:")


def test_init_is_idempotent_and_never_rewrites_the_key(node, settings):
    key = (settings.home / KEY_FILE).read_bytes()
    again, created = init_node(settings)
    assert not created
    assert again.key_fingerprint == node.key_fingerprint
    assert (settings.home / KEY_FILE).read_bytes() == key


def test_init_for_another_country_is_refused(node, settings):
    with pytest.raises(NodeConflict, match="already belongs to the node of CAN"):
        init_node(settings, country="GBR")


def test_a_foreign_key_is_detected(node, settings, tmp_path):
    (settings.home / KEY_FILE).unlink()
    from dataclasses import replace

    stranger = replace(
        settings, home=tmp_path / "stranger", database_url=f"sqlite:///{tmp_path}/s.db"
    )
    init_node(stranger)
    (settings.home / KEY_FILE).write_bytes((stranger.home / KEY_FILE).read_bytes())
    with pytest.raises(NodeConflict, match="not this node's key"):
        open_node(settings)


def test_a_missing_key_is_reported_not_replaced(node, settings):
    (settings.home / KEY_FILE).unlink()
    with pytest.raises(NodeConflict, match="missing"):
        init_node(settings)
    assert not (settings.home / KEY_FILE).exists()


def test_open_before_init_says_what_to_do(settings):
    with pytest.raises(NodeNotInitialised, match="liaison init"):
        open_node(settings)


def test_bad_country_code(settings):
    with pytest.raises(ConfigError, match="alpha-3"):
        init_node(settings, country="Canada")
