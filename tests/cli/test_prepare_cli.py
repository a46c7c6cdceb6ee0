"""`liaison prepare`: every stored text's fingerprint slots found once, kept, and used."""

import json


def test_prepare_finds_each_texts_slots_once(demo):
    first = json.loads(demo("prepare", "--json").stdout)
    assert first["versions"] > 0
    assert first["texts_prepared"] > 0
    assert first["texts_known"] == first["texts_prepared"]
    again = json.loads(demo("prepare", "--json").stdout)
    assert again["texts_prepared"] == 0
    assert again["texts_known"] == first["texts_known"]
    shown = demo("prepare")
    assert shown.exit_code == 0
    assert "0 texts prepared now" in shown.stdout
