"""Mutual TLS through a terminating proxy: a verified client certificate's fingerprint,
passed by a trusted proxy, identifies the partner; from anyone else the header is ignored."""

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient
from typer.testing import CliRunner

from liaison.cli import app as cli
from liaison.demo import DEFAULT_ALLIANCE, DEFAULT_DOCUMENTS, DEFAULT_INTELLIGENCE, run_demo
from liaison.taxii.app import create_app
from liaison.taxii.credentials import fingerprint_of

HEADER = "X-Client-Cert-SHA256"
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


def certificate_pem() -> bytes:
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taxii.gbr.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def node(tmp_path, monkeypatch):
    monkeypatch.setenv("LIAISON_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LIAISON_DATABASE_URL", raising=False)
    from liaison.settings import Settings

    settings = dataclasses.replace(
        Settings.from_env(),
        client_cert_header=HEADER,
        trusted_proxies=frozenset({"10.9.8.7"}),
    )
    return run_demo(settings, DEFAULT_DOCUMENTS, DEFAULT_ALLIANCE, DEFAULT_INTELLIGENCE).node


def test_certificate_fingerprint_maps_to_a_partner(node, tmp_path):
    pem = certificate_pem()
    path = tmp_path / "gbr.pem"
    path.write_bytes(pem)
    result = CliRunner().invoke(cli, ["partner", "certificate", "GBR", "--cert", str(path)])
    assert result.exit_code == 0, result.stderr
    fingerprint = fingerprint_of(pem)
    assert fingerprint == x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()

    app = create_app(node)
    proxy = TestClient(app, client=("10.9.8.7", 443), headers=ACCEPT)
    assert proxy.get("/api/", headers={HEADER: fingerprint}).status_code == 200
    assert proxy.get("/api/", headers={HEADER: "00" * 32}).status_code == 401
    stranger = TestClient(app, client=("192.0.2.1", 443), headers=ACCEPT)
    assert stranger.get("/api/", headers={HEADER: fingerprint}).status_code == 401


def test_bad_certificate_input(node, tmp_path):
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    runner = CliRunner()
    junk = runner.invoke(
        cli, ["partner", "certificate", "GBR", "--cert", str(tmp_path / "junk.pem")]
    )
    assert junk.exit_code == 2 and "not an X.509 certificate" in junk.stderr
    short = runner.invoke(cli, ["partner", "certificate", "GBR", "--fingerprint", "abc"])
    assert short.exit_code == 2 and "64 hex digits" in short.stderr
    unknown = runner.invoke(cli, ["partner", "certificate", "XYZ", "--fingerprint", "ab" * 32])
    assert unknown.exit_code == 2
