"""Signing in to the TAXII server (docs/taxii.md, "Sign-in and throttling"): failures throttled
per user name and per client address in the store, shared by every server process; the same
Argon2 cost for unknown and known names; a bound on the checks that run at once.

Time is an injected clock, never a sleep; Argon2 runs with cheap parameters except in the one
test where its cost is the point."""

import base64
import dataclasses
import statistics
import threading
import time

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, extract_parameters
from starlette.testclient import TestClient

from liaison.demo import DEFAULT_ALLIANCE
from liaison.errors import Throttled
from liaison.node import apply_alliance, init_node, open_node
from liaison.settings import InputLimits, Settings
from liaison.store.engine import write_transaction
from liaison.store.schema import sign_in_failures
from liaison.taxii.app import create_app
from liaison.taxii.credentials import (
    ADDRESS,
    USER,
    Authenticator,
    SignInThrottle,
    authenticator_for,
    client_address,
    dummy_hash,
    issue_credentials,
    revoke_credentials,
    subject_of,
)
from tests.conftest import PATIENCE

TAXII = "application/taxii+json;version=2.1"
ACCEPT = {"Accept": TAXII}
EPOCH = 1_800_000_000.0


class Clock:
    """Wall time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingHasher(PasswordHasher):
    """Cheap Argon2 parameters, counting the checks."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, stored, password):
        self.verified += 1
        return super().verify(stored, password)


class BlockingHasher(CountingHasher):
    """Holds each check until ``release`` is set; ``entered`` counts the checks under way."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def verify(self, stored, password):
        self.entered.release()
        assert self.release.wait(timeout=PATIENCE), "the test never released the held checks"
        return super().verify(stored, password)


@dataclasses.dataclass
class Place:
    node: object
    hasher: CountingHasher
    issued: dict
    clock: Clock

    def app(self, hasher=None, throttle=True, **options):
        throttle_ = SignInThrottle(self.node.engine, clock=self.clock) if throttle else None
        authenticator = Authenticator(throttle_, hasher=hasher or self.hasher, **options)
        return create_app(self.node, authenticator)


@pytest.fixture
def place(settings):
    """A node with the demo alliance and credentials for FRA and USA, on each database."""
    node, _ = init_node(dataclasses.replace(settings, trusted_proxies=frozenset({"10.0.0.1"})))
    apply_alliance(node, DEFAULT_ALLIANCE)
    hasher = CountingHasher()
    with write_transaction(node.engine) as connection:
        issued = {code: issue_credentials(connection, code, hasher) for code in ("FRA", "USA")}
    yield Place(node, hasher, issued, Clock())
    node.engine.dispose()


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {**ACCEPT, "Authorization": f"Basic {token}"}


def bearer(token):
    return {**ACCEPT, "Authorization": f"Bearer {token}"}


def from_(app, address):
    return TestClient(app, client=(address, 50000))


def assert_throttled(response, retry_after):
    assert response.status_code == 429
    assert response.headers["content-type"] == TAXII
    assert response.headers["retry-after"] == str(retry_after)
    body = response.json()
    assert body["http_status"] == "429" and body["title"] == "Too many requests"
    assert f"{retry_after} s" in body["description"]


def rows(node):
    with node.engine.connect() as connection:
        found = connection.execute(sa.select(sign_in_failures)).all()
    return {(r.kind, r.subject): r.failures for r in found}


# --- throttling ---------------------------------------------------------------------------


def test_a_user_name_is_throttled_and_the_right_password_waits_out_the_backoff(place):
    app = place.app()
    fra = place.issued["FRA"]
    for n in range(5):  # each from its own address: only the name's counter grows
        response = from_(app, f"192.0.2.{n}").get("/api/", headers=basic(fra.username, "wrong"))
        assert response.status_code == 401
    assert place.hasher.verified == 5

    right = basic(fra.username, fra.password)
    assert_throttled(from_(app, "192.0.2.50").get("/api/", headers=right), 1)
    assert place.hasher.verified == 5  # refused without checking the password

    place.clock.advance(1)
    assert from_(app, "192.0.2.50").get("/api/", headers=right).status_code == 200
    assert (USER, fra.username) not in rows(place.node)  # the success reset the name

    for n in range(4):  # four more failures after the reset do not throttle
        response = from_(app, f"192.0.2.{60 + n}").get("/api/", headers=basic(fra.username, "x"))
        assert response.status_code == 401
    assert from_(app, "192.0.2.70").get("/api/", headers=right).status_code == 200


def test_the_backoff_doubles_up_to_the_cap(place):
    throttle = SignInThrottle(place.node.engine, max_backoff=8, clock=place.clock)
    app = create_app(place.node, Authenticator(throttle, hasher=place.hasher))
    name = "fra-nobody"  # unknown names are throttled the same way
    for n in range(5):
        assert from_(app, f"192.0.2.{n}").get("/api/", headers=basic(name, "x")).status_code == 401
    for n, wait in enumerate([1, 2, 4, 8, 8, 8]):
        client = from_(app, f"198.51.100.{n}")
        assert_throttled(client.get("/api/", headers=basic(name, "x")), wait)
        place.clock.advance(wait - 0.5)
        assert_throttled(client.get("/api/", headers=basic(name, "x")), 1)
        place.clock.advance(0.5)
        assert client.get("/api/", headers=basic(name, "x")).status_code == 401  # one more
    assert throttle.backoff(4) == 0 and throttle.backoff(5) == 1 and throttle.backoff(99) == 8


def test_an_address_is_throttled_across_names_and_tokens(place):
    app = place.app()
    usa, fra = place.issued["USA"], place.issued["FRA"]
    attacker = from_(app, "203.0.113.9")
    for n in range(5):
        response = attacker.get("/api/", headers=basic(f"usa-guess{n}", "x"))
        assert response.status_code == 401
    assert_throttled(attacker.get("/api/", headers=basic(usa.username, usa.password)), 1)
    assert_throttled(attacker.get("/api/", headers=bearer(usa.token)), 1)
    # Another address is not held back by this one's failures.
    assert from_(app, "203.0.113.10").get("/api/", headers=bearer(usa.token)).status_code == 200

    # Bearer failures count by address (a token has no user name).
    other = from_(app, "198.51.100.7")
    for token in ["nonsense", "lsn_0000_nope", f"{fra.token}x", "lsn_", f"lsn_{'0' * 16}_y"]:
        assert other.get("/api/", headers=bearer(token)).status_code == 401
    assert_throttled(other.get("/api/", headers=basic(fra.username, fra.password)), 1)
    place.clock.advance(1)
    assert other.get("/api/", headers=basic(fra.username, fra.password)).status_code == 200
    # A success does not reset the address: its next failure waits twice as long.
    assert other.get("/api/", headers=bearer("lsn_1_2")).status_code == 401
    assert_throttled(other.get("/api/", headers=bearer(fra.token)), 2)


def test_counters_are_shared_by_server_processes_on_one_store(place):
    """Two app instances, each on its own engine (as `liaison serve --workers 2` runs)."""
    second = open_node(place.node.settings)
    try:
        app_a = place.app()
        app_b = create_app(
            second,
            Authenticator(SignInThrottle(second.engine, clock=place.clock), hasher=place.hasher),
        )
        fra = place.issued["FRA"]
        wrong = basic(fra.username, "wrong")
        for n in range(5):
            app = app_a if n % 2 else app_b
            assert from_(app, f"192.0.2.{n}").get("/api/", headers=wrong).status_code == 401
        right = basic(fra.username, fra.password)
        assert_throttled(from_(app_a, "192.0.2.40").get("/api/", headers=right), 1)
        assert_throttled(from_(app_b, "192.0.2.41").get("/api/", headers=right), 1)
        place.clock.advance(1)
        assert from_(app_b, "192.0.2.41").get("/api/", headers=right).status_code == 200
        # B's success reset the name for A too.
        assert from_(app_a, "192.0.2.42").get("/api/", headers=wrong).status_code == 401
        assert from_(app_a, "192.0.2.42").get("/api/", headers=right).status_code == 200
    finally:
        second.engine.dispose()


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(place):
    app = place.app()
    fra = place.issued["FRA"]
    proxy = from_(app, "10.0.0.1")  # trusted (the fixture's LIAISON_TRUSTED_PROXIES)
    for n in range(5):
        response = proxy.get(
            "/api/", headers={**basic(f"x{n}", "x"), "X-Forwarded-For": "203.0.113.5"}
        )
        assert response.status_code == 401
    assert (ADDRESS, "203.0.113.5") in rows(place.node)
    assert (ADDRESS, "10.0.0.1") not in rows(place.node)
    right = basic(fra.username, fra.password)
    held = proxy.get("/api/", headers={**right, "X-Forwarded-For": "203.0.113.5"})
    assert_throttled(held, 1)
    fine = proxy.get("/api/", headers={**right, "X-Forwarded-For": "203.0.113.6"})
    assert fine.status_code == 200

    # From anyone else the header is ignored: the failures are the peer's.
    stranger = from_(app, "198.51.100.3")
    for n in range(5):
        response = stranger.get(
            "/api/", headers={**basic(f"y{n}", "x"), "X-Forwarded-For": f"192.0.2.{n}"}
        )
        assert response.status_code == 401
    assert_throttled(stranger.get("/api/", headers={**right, "X-Forwarded-For": "192.0.2.99"}), 1)


def test_client_address():
    trusted = {"10.0.0.1", "10.0.0.2"}
    assert client_address("198.51.100.1", ["203.0.113.5"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.1", [], trusted) == "10.0.0.1"
    assert client_address("10.0.0.1", ["203.0.113.5"], trusted) == "203.0.113.5"
    # The nearest hop that is not a trusted proxy: what the client wrote further left is not
    # trusted.
    assert client_address("10.0.0.1", ["1.2.3.4, 203.0.113.5, 10.0.0.2"], trusted) == (
        "203.0.113.5"
    )
    assert client_address("10.0.0.1", ["1.2.3.4", "203.0.113.5"], trusted) == "203.0.113.5"
    assert client_address("10.0.0.1", ["10.0.0.2"], trusted) == "10.0.0.2"


def test_odd_names_are_stored_by_their_hash(place):
    app = place.app()
    long_name = "n" * 500
    for name in (long_name, "tab\tname", "nul\x00name"):
        assert from_(app, "192.0.2.1").get("/api/", headers=basic(name, "x")).status_code == 401
    stored = rows(place.node)
    assert subject_of(USER, long_name) in stored and subject_of(USER, "nul\x00name") in stored
    assert all(len(subject) <= 200 and "\x00" not in subject for _, subject in stored)


def test_a_success_writes_nothing_and_counters_are_forgotten_after_a_day(place):
    app = place.app()
    fra = place.issued["FRA"]
    writes = []

    def spy(_conn, _cursor, statement, *_args):
        if "sign_in_failures" in statement and not statement.lstrip().upper().startswith("SELECT"):
            writes.append(statement)

    sa.event.listen(place.node.engine, "before_cursor_execute", spy)
    try:
        client = from_(app, "192.0.2.1")
        assert client.get("/api/", headers=basic(fra.username, fra.password)).status_code == 200
        assert client.get("/api/", headers=bearer(fra.token)).status_code == 200
        assert writes == []
        assert client.get("/api/", headers=basic(fra.username, "x")).status_code == 401
        assert writes  # a failure is written
    finally:
        sa.event.remove(place.node.engine, "before_cursor_execute", spy)

    throttle = SignInThrottle(place.node.engine, clock=place.clock)
    subjects = [subject_of(USER, "someone"), subject_of(ADDRESS, "192.0.2.9")]
    for _ in range(5):
        throttle.failed(subjects)
    with place.node.engine.connect() as connection, pytest.raises(Throttled):
        throttle.check(connection, subjects)
    place.clock.advance(24 * 3600 + 1)
    with place.node.engine.connect() as connection:
        assert throttle.check(connection, subjects) == {}
    throttle.failed([subject_of(ADDRESS, "192.0.2.10")])  # and the old rows are deleted
    assert set(rows(place.node)) == {(ADDRESS, "192.0.2.10")}


def test_settings_choose_the_throttle_and_the_slots(tmp_path):
    env = {"LIAISON_HOME": str(tmp_path)}
    default = Settings.from_env(env)
    assert (default.sign_in_failures, default.sign_in_max_backoff) == (5, 900)
    custom = Settings.from_env(
        {
            **env,
            "LIAISON_SIGN_IN_FAILURES": "3",
            "LIAISON_SIGN_IN_MAX_BACKOFF": "60",
            "LIAISON_PASSWORD_CHECKS": "2",
        }
    )
    engine = sa.create_engine("sqlite://")
    authenticator = authenticator_for(engine, custom)
    assert authenticator.checks == 2
    assert authenticator.throttle.threshold == 3 and authenticator.throttle.max_backoff == 60
    off = authenticator_for(engine, Settings.from_env({**env, "LIAISON_SIGN_IN_FAILURES": "0"}))
    assert off.throttle is None and off.checks >= 1


# --- the same cost for every name ---------------------------------------------------------


def test_every_name_costs_exactly_one_argon2_check(place):
    app = place.app(throttle=False)
    fra, usa = place.issued["FRA"], place.issued["USA"]
    with write_transaction(place.node.engine) as connection:
        revoke_credentials(connection, "USA")
    client = from_(app, "192.0.2.1")
    cases = [
        basic(fra.username, "wrong"),  # known name
        basic("fra-00000000", "wrong"),  # unknown name
        basic(usa.username, usa.password),  # revoked name, its old password
        bearer(f"{fra.token}x"),  # known token id, wrong secret
        bearer(f"lsn_{'0' * 16}_secret"),  # unknown token id
        bearer(usa.token),  # revoked token
    ]
    for headers in cases:
        before = place.hasher.verified
        assert client.get("/api/", headers=headers).status_code == 401
        assert place.hasher.verified - before == 1, headers
    # The dummy hash has the parameters of the hasher the credentials were issued with.
    dummy = dummy_hash(place.hasher)
    assert extract_parameters(dummy) == extract_parameters(place.hasher.hash("x"))
    assert extract_parameters(dummy_hash(PasswordHasher())) == extract_parameters(
        PasswordHasher().hash("x")
    )


def test_known_and_unknown_names_take_the_same_time(tmp_path):
    """Real Argon2 (the default parameters): interleaved attempts, medians within 2x either
    way (before the dummy check the ratio was about 40x; the check dominates both)."""
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'liaison.db'}",
        limits=InputLimits(),
        validation_workers=1,
    )
    node, _ = init_node(settings)
    apply_alliance(node, DEFAULT_ALLIANCE)
    with write_transaction(node.engine) as connection:
        fra = issue_credentials(connection, "FRA")
    try:
        # No throttle: the known name would otherwise be held back after five failures.
        client = TestClient(create_app(node, Authenticator(None)))
        assert client.get("/api/", headers=basic(fra.username, "warm-up")).status_code == 401
        known, unknown = [], []
        for n in range(12):
            for name, times in ((fra.username, known), ("fra-0badc0de", unknown)):
                start = time.perf_counter()
                response = client.get("/api/", headers=basic(name, f"guess-{n}"))
                times.append(time.perf_counter() - start)
                assert response.status_code == 401
        ratio = statistics.median(known) / statistics.median(unknown)
        print(f"known {statistics.median(known):.3f} s, unknown {statistics.median(unknown):.3f} s")
        assert 0.5 < ratio < 2.0, (ratio, known, unknown)
    finally:
        node.engine.dispose()


# --- the bound on checks at once ----------------------------------------------------------


def test_checks_beyond_the_slots_are_refused_at_once(place):
    hasher = BlockingHasher()
    app = place.app(hasher=hasher, throttle=True, checks=2, wait=0.05)
    fra = place.issued["FRA"]
    results = []

    def held(n):
        response = from_(app, f"192.0.2.{n}").get("/api/", headers=basic(f"nobody{n}", "x"))
        results.append(response.status_code)

    threads = [threading.Thread(target=held, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:  # both slots taken
            assert hasher.entered.acquire(timeout=PATIENCE)
        start = time.monotonic()
        extra = from_(app, "192.0.2.9").get("/api/", headers=basic(fra.username, fra.password))
        elapsed = time.monotonic() - start
        assert extra.status_code == 503
        assert extra.headers["retry-after"] == "1"
        assert extra.headers["content-type"] == TAXII
        assert extra.json()["http_status"] == "503"
        # Not queued behind the held checks: they wait for the release, up to PATIENCE.
        assert elapsed < PATIENCE / 2
        assert hasher.verified == 0
        unknown = from_(app, "192.0.2.9").get("/api/", headers=basic("nobody", "x"))
        assert unknown.status_code == 503  # the same answer for any name
        # A refusal for lack of a slot is not a failure of the client.
        assert (ADDRESS, "192.0.2.9") not in rows(place.node)
    finally:
        hasher.release.set()
        for thread in threads:
            thread.join(timeout=PATIENCE)
    assert sorted(results) == [401, 401]
    # The slots are free again.
    right = from_(app, "192.0.2.9").get("/api/", headers=basic(fra.username, fra.password))
    assert right.status_code == 200
