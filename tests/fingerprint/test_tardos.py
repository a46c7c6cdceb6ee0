"""liaison.fingerprint.tardos: the code's derivation, the symmetric score, the thresholds, and
simulated leaks by one to three partners under the standard collusion attacks.

The simulations draw biases and bits with numpy (the HMAC derivation is tested on its own and
end to end through ``accuse``), attack with the coalition strategies of the literature under the
marking assumption, and score with the module's own functions. Seeds are fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise
from statistics import NormalDist

import numpy as np
import pytest

from liaison.fingerprint.tardos import (
    CUTOFF,
    SCHEME,
    Accusation,
    accuse,
    bias,
    biases,
    bit,
    coalition_score,
    code_length,
    codeword,
    false_accusation_bound,
    leak_threshold,
    scores,
    threshold,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
PARTNERS = [f"partner-{i:02d}" for i in range(30)]
N = len(PARTNERS)
EPSILON = 1e-3
R0 = math.asin(math.sqrt(CUTOFF))
R1 = math.pi / 2 - R0


def arcsine_cdf(p: np.ndarray) -> np.ndarray:
    return (np.arcsin(np.sqrt(p)) - R0) / (R1 - R0)


# --- the code ----------------------------------------------------------------------------------


def test_bias_and_bit_are_deterministic_and_keyed_by_the_secret() -> None:
    keys = [f"indicator--{i}|2024-05-01T00:00:00Z|{i % 7}" for i in range(200)]
    assert [bias(SECRET, k) for k in keys] == [bias(SECRET, k) for k in keys]
    assert [bit(SECRET, "NZ", k) for k in keys] == [bit(SECRET, "NZ", k) for k in keys]
    assert bias(SECRET, "a|1|0") == bias(SECRET, b"a|1|0")  # a str key is its UTF-8 bytes
    assert sum(bias(SECRET, k) != bias(OTHER_SECRET, k) for k in keys) == len(keys)
    assert sum(bit(SECRET, "NZ", k) != bit(OTHER_SECRET, "NZ", k) for k in keys) > 40
    assert sum(bit(SECRET, "NZ", k) != bit(SECRET, "CA", k) for k in keys) > 40


def test_vectorised_helpers_agree_with_the_scalar_ones() -> None:
    keys = [f"report--{i}|1|{i}" for i in range(50)]
    assert biases(SECRET, keys).tolist() == [bias(SECRET, k) for k in keys]
    assert codeword(SECRET, "UK", keys).tolist() == [bit(SECRET, "UK", k) for k in keys]


def test_partner_names_are_length_prefixed_so_keys_with_bars_cannot_collide() -> None:
    # With "bit|" + partner + "|" + key, ("a", "b|<s>") and ("a|b", "<s>") would hash alike.
    from liaison.fingerprint.tardos import _bit_message

    assert _bit_message("a", b"b|c") != _bit_message("a|b", b"c")


def test_biases_lie_in_the_cutoff_and_follow_the_arcsine_law() -> None:
    p = biases(SECRET, [f"k{i}" for i in range(4000)])
    assert ((p >= CUTOFF) & (p <= 1 - CUTOFF)).all()
    ordered = np.sort(p)
    cdf = arcsine_cdf(ordered)
    empirical_hi = np.arange(1, p.size + 1) / p.size
    ks = max(np.max(empirical_hi - cdf), np.max(cdf - (empirical_hi - 1 / p.size)))
    assert ks < 2.0 / math.sqrt(p.size)  # Kolmogorov-Smirnov, far looser than its 1 % point
    assert abs(np.mean(p) - 0.5) < 0.03  # symmetric about 1/2
    assert np.mean(p < 0.1) > 0.15  # and U-shaped: the uniform law would put 0.09 there


def test_bits_are_one_with_the_bias_probability() -> None:
    keys = [f"k{i}" for i in range(300)]
    p = biases(SECRET, keys)
    bits = np.stack([codeword(SECRET, f"partner-{j}", keys) for j in range(100)])
    # the total count of ones against its expectation: a z-score
    z = (bits.sum() - 100 * p.sum()) / math.sqrt(100 * float(np.sum(p * (1 - p))))
    assert abs(z) < 4
    low, high = p < 0.1, p > 0.9
    assert bits[:, low].mean() < 0.1 and bits[:, high].mean() > 0.9


# --- the score ---------------------------------------------------------------------------------


def test_score_terms_are_the_symmetric_tardos_terms() -> None:
    p = 0.2
    x = np.array([[1], [0]])
    g1, g0 = math.sqrt((1 - p) / p), math.sqrt(p / (1 - p))
    assert scores([p], x, [1]).tolist() == pytest.approx([g1, -g0])
    assert scores([p], x, [0]).tolist() == pytest.approx([-g1, g0])


@pytest.mark.parametrize("y", [0, 1])
def test_an_innocent_term_has_mean_zero_and_variance_one_for_every_bias(y: int) -> None:
    for p in np.linspace(CUTOFF, 1 - CUTOFF, 41):
        one, zero = scores([p], [[1], [0]], [y])
        assert p * one + (1 - p) * zero == pytest.approx(0, abs=1e-12)
        assert p * one**2 + (1 - p) * zero**2 == pytest.approx(1, abs=1e-12)


def test_innocent_scores_over_many_codes_have_mean_zero_and_variance_m() -> None:
    rng = np.random.default_rng(1)
    m, innocents = 300, 4000
    p = _draw_biases(rng, m)
    colluders = (rng.random((3, m)) < p).astype(np.uint8)
    y = ATTACKS["majority"](rng, colluders)
    s = scores(p, (rng.random((innocents, m)) < p).astype(np.uint8), y)
    assert abs(s.mean()) < 4 * math.sqrt(m / innocents)
    assert s.var() / m == pytest.approx(1, abs=0.08)


# --- thresholds --------------------------------------------------------------------------------


def test_the_leak_threshold_bounds_an_innocents_score_empirically() -> None:
    # At eps/n = 1e-2 per innocent the exceedances are frequent enough to count.
    rng = np.random.default_rng(2)
    m, innocents, per_innocent = 400, 40_000, 1e-2
    p = _draw_biases(rng, m)
    colluders = (rng.random((3, m)) < p).astype(np.uint8)
    y = ATTACKS["minority"](rng, colluders)
    z = leak_threshold(p, y, 1, per_innocent)
    s = scores(p, (rng.random((innocents, m)) < p).astype(np.uint8), y)
    assert np.mean(s >= z) <= per_innocent
    # the bound is a Chernoff bound: valid and not far off (about ten times the true rate)
    assert np.mean(s >= z) > per_innocent / 50
    assert false_accusation_bound(z, p, y) == pytest.approx(per_innocent, rel=1e-6)


def test_false_accusation_bound_falls_with_the_score() -> None:
    rng = np.random.default_rng(3)
    p = _draw_biases(rng, 200)
    y = (rng.random(200) < p).astype(np.uint8)
    bounds = [false_accusation_bound(s, p, y) for s in (-5, 0, 10, 20, 40, 60, 80)]
    assert bounds[:2] == [1.0, 1.0]
    assert all(a > b for a, b in pairwise(bounds[1:]))
    assert false_accusation_bound(1e4, p, y) == 0.0  # beyond any score an innocent can reach


def test_the_a_priori_threshold_is_not_below_the_gaussian_quantile() -> None:
    gaussian = NormalDist().inv_cdf(1 - EPSILON / N)  # 3.99
    chernoff_limit = math.sqrt(2 * math.log(N / EPSILON))  # 4.54, the bound's large-m limit
    k = {m: threshold(m, N, EPSILON) / math.sqrt(m) for m in (50, 100, 700, 5000)}
    assert k[50] > k[100] > k[700] > k[5000] > chernoff_limit > gaussian
    assert threshold(0, N, EPSILON) == math.inf
    assert threshold(700, N, 1e-6) > threshold(700, N, EPSILON) > threshold(700, 3, EPSILON)


def test_the_leak_threshold_is_below_the_a_priori_one_for_the_standard_attacks() -> None:
    rng = np.random.default_rng(4)
    a_priori = threshold(700, N, EPSILON)
    for attack in ATTACKS:
        p = _draw_biases(rng, 700)
        y = ATTACKS[attack](rng, (rng.random((3, 700)) < p).astype(np.uint8))
        assert 0.8 * a_priori < leak_threshold(p, y, N, EPSILON) < 0.95 * a_priori, attack


def test_few_marks_accuse_nobody() -> None:
    # Two marks: an innocent matches them both far more often than eps/n.
    assert leak_threshold([0.5, 0.5], [1, 0], N, EPSILON) == math.inf
    assert leak_threshold([], [], N, EPSILON) == math.inf


def test_code_length_against_the_literature() -> None:
    asymptotic = math.pi**2 / 2 * 9 * math.log(N / EPSILON)  # (π²/2) c² ln(n/ε) = 458
    assert asymptotic < code_length(3, EPSILON, N) < 750
    assert code_length(1, EPSILON, N) < code_length(2, EPSILON, N) < code_length(3, EPSILON, N)
    assert coalition_score(1)[0] == pytest.approx(0.715, abs=1e-3)  # E[2√(p(1−p))]
    assert coalition_score(3)[0] > 2 / math.pi


# --- simulated leaks ---------------------------------------------------------------------------

Attack = Callable[[np.random.Generator, np.ndarray], np.ndarray]


def _marking_assumption(attack: Attack) -> Attack:
    """Where all colluders hold the same bit, the leak shows it; elsewhere ``attack`` decides."""

    def attacked(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        ones = x.sum(axis=0)
        differ = (ones > 0) & (ones < x.shape[0])
        return np.where(differ, attack(rng, x), x[0]).astype(np.uint8)

    return attacked


def _vote(rng: np.random.Generator, x: np.ndarray, majority: bool) -> np.ndarray:
    twice = 2 * x.sum(axis=0)
    ties = rng.integers(0, 2, x.shape[1])
    more_ones = twice > x.shape[0]
    return np.where(twice == x.shape[0], ties, more_ones if majority else ~more_ones)


ATTACKS: dict[str, Attack] = {
    "majority": _marking_assumption(lambda rng, x: _vote(rng, x, True)),
    "minority": _marking_assumption(lambda rng, x: _vote(rng, x, False)),
    "interleaving": _marking_assumption(
        lambda rng, x: x[rng.integers(0, x.shape[0], x.shape[1]), np.arange(x.shape[1])]
    ),
    "random": _marking_assumption(lambda rng, x: rng.integers(0, 2, x.shape[1])),
    "all-0": _marking_assumption(lambda rng, x: np.zeros(x.shape[1])),
    "all-1": _marking_assumption(lambda rng, x: np.ones(x.shape[1])),
}


def _draw_biases(rng: np.random.Generator, m: int) -> np.ndarray:
    return np.sin(rng.uniform(R0, R1, m)) ** 2


def _simulate(
    seed: int, colluders: int, marks: int, attack: str, trials: int, readable: float = 1.0
) -> tuple[int, int]:
    """Trials in which at least one colluder, and any innocent, was accused."""
    rng = np.random.default_rng(seed)
    caught = framed = 0
    for _ in range(trials):
        p = _draw_biases(rng, marks)
        x = (rng.random((N, marks)) < p).astype(np.uint8)  # the first rows are the coalition
        y = ATTACKS[attack](rng, x[:colluders])
        kept = rng.random(marks) < readable
        s = scores(p[kept], x[:, kept], y[kept])
        z = leak_threshold(p[kept], y[kept], N, EPSILON)
        caught += bool((s[:colluders] >= z).any())
        framed += bool((s[colluders:] >= z).any())
    return caught, framed


def _framing_allowance(trials: int) -> int:
    """The most trials with an innocent accused that a rate of EPSILON explains (99.9 %)."""
    total, k = 0.0, 0
    while True:
        total += math.comb(trials, k) * EPSILON**k * (1 - EPSILON) ** (trials - k)
        if total >= 0.999:
            return k
        k += 1


TRIALS = 200


@pytest.mark.parametrize("colluders", [2, 3])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_coalition_is_caught_from_700_marks(colluders: int, attack: str) -> None:
    seed = 100 * colluders + list(ATTACKS).index(attack)
    caught, framed = _simulate(seed, colluders, 700, attack, TRIALS)
    assert caught >= 0.99 * TRIALS
    assert framed <= _framing_allowance(TRIALS)  # at most 3 of 200 trials; none so far


def test_a_single_leaker_is_caught_from_a_hundred_marks() -> None:
    caught, framed = _simulate(7, 1, 100, "majority", 200)
    assert caught >= 0.99 * 200 and framed <= _framing_allowance(200)


def test_a_single_leaker_is_caught_when_only_30_percent_of_marks_are_readable() -> None:
    caught, framed = _simulate(8, 1, 340, "majority", 200, readable=0.3)
    assert caught >= 0.99 * 200 and framed <= _framing_allowance(200)


def test_no_innocent_is_framed_across_all_attacks() -> None:
    # Pools the attack tests' trials with fresh ones at fewer marks, where colluders score less.
    trials = 0
    framed = 0
    for colluders in (2, 3):
        for attack in ATTACKS:
            seed = 1000 * colluders + list(ATTACKS).index(attack)
            framed += _simulate(seed, colluders, 250, attack, 40)[1]
            trials += 40
    assert framed <= _framing_allowance(trials)


# --- accuse, end to end through the HMAC derivation ---------------------------------------------


def _leak(keys: list[str], copies: list[np.ndarray], attack: str, seed: int) -> dict[str, int]:
    y = ATTACKS[attack](np.random.default_rng(seed), np.stack(copies))
    return dict(zip(keys, (int(v) for v in y), strict=True))


def _keys(objects: int, slots: int) -> list[str]:
    return [
        f"report--{o}|2024-0{1 + o}-01T00:00:00Z|{s}" for o in range(objects) for s in range(slots)
    ]


def test_accuse_names_a_single_leaker_from_marks_pooled_across_documents() -> None:
    keys = _keys(4, 25)  # four short reports, 25 marks each, leaked together
    leaker = "partner-07"
    observed = _leak(keys, [codeword(SECRET, leaker, keys)], "majority", 0)
    result = accuse(SECRET, PARTNERS, observed)
    assert isinstance(result, Accusation)
    assert result.accused == (leaker,)
    assert result.suspects[0].partner == leaker
    assert result.marks_read == 100 and result.epsilon == EPSILON
    assert [s.score for s in result.suspects] == sorted(
        (s.score for s in result.suspects), reverse=True
    )
    # pooling: each document's scores add up to the pooled score
    per_doc = [
        accuse(SECRET, PARTNERS, {k: observed[k] for k in keys[i : i + 25]})
        for i in (0, 25, 50, 75)
    ]
    pooled = {s.partner: s.score for s in result.suspects}
    summed = {
        p: sum(next(s.score for s in a.suspects if s.partner == p) for a in per_doc)
        for p in PARTNERS
    }
    assert summed == pytest.approx(pooled)


def test_accuse_catches_a_coalition_and_frames_nobody() -> None:
    keys = _keys(7, 100)
    coalition = ["partner-03", "partner-11", "partner-29"]
    copies = [codeword(SECRET, partner, keys) for partner in coalition]
    for seed, attack in enumerate(ATTACKS):
        result = accuse(SECRET, PARTNERS, _leak(keys, copies, attack, seed))
        assert result.accused, attack
        assert set(result.accused) <= set(coalition), attack


def test_unreadable_marks_change_nothing() -> None:
    keys = _keys(2, 60)
    observed: dict[str, int | None] = dict(
        _leak(keys, [codeword(SECRET, "partner-00", keys)], "majority", 0)
    )
    before = accuse(SECRET, PARTNERS, observed)
    observed.update({f"report--9|x|{i}": None for i in range(500)})
    observed.update({k: None for k in _keys(9, 60)[120:]})
    after = accuse(SECRET, PARTNERS, observed)
    assert after == before


def test_nothing_readable_accuses_nobody() -> None:
    result = accuse(SECRET, PARTNERS, {"a|1|0": None})
    assert result.marks_read == 0 and result.threshold == math.inf and not result.accused


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: bias(b"short", "k"), "at least 16 bytes"),
        (lambda: bit(SECRET, "", "k"), "non-empty"),
        (lambda: accuse(SECRET, ["A", "A"], {}), "must not repeat"),
        (lambda: accuse(SECRET, ["A"], {"k": 2}), "0, 1 or None"),
        (lambda: accuse(SECRET, ["A"], {"k": True}), "0, 1 or None"),
        (lambda: accuse(SECRET, ["A"], {"k": 1, b"k": 0}), "given twice"),
        (lambda: accuse(SECRET, ["A"], {"k": 1}, epsilon=0.0), "epsilon"),
        (lambda: threshold(-1, N, EPSILON), "negative"),
        (lambda: leak_threshold([0.5], [None], N, EPSILON), "0 or 1"),
        (lambda: scores([0.5, 0.5], [[1, 0]], [1]), "one length"),
        (lambda: code_length(0, EPSILON, N), "colluders"),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_the_scheme_names_its_cutoff() -> None:
    assert f"{CUTOFF}" in SCHEME
