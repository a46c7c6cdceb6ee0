"""The symmetric Tardos code: one code word per partner, and the accusation of a leak's sources.

Every *mark* (one place in one released object version where a partner's copy can carry a 0 or
a 1) is named by a *mark key*, such as ``f"{object_id}|{version}|{slot}"``. Everything about a
mark is derived from the node secret and its key, so a re-delivery is byte-identical, an
investigation needs no stored copy, and marks from several leaked documents pool into one code.

Construction (Tardos 2008, section 2; the arcsine law with a cutoff)
--------------------------------------------------------------------
For each mark key ``k``:

- the secret bias ``p = sin²(r)``, with ``r`` uniform on ``[r₀, π/2 − r₀]``, ``r₀ = arcsin √t``;
  ``r`` is read from ``HMAC-SHA256(secret, "bias|" ‖ k)``. Then ``p`` has the density
  ``1 / ((π − 4r₀) √(p(1−p)))`` on ``[t, 1−t]`` (the arcsine law, renormalised to the cutoff);
- partner ``j``'s bit is 1 iff ``u < p``, with ``u`` uniform from
  ``HMAC-SHA256(secret, "bit|" ‖ len(j) ‖ j ‖ "|" ‖ k)``. The partner name is length-prefixed
  (4 bytes, big-endian) because keys contain ``|``: without it partner ``a`` with key ``b|c``
  and partner ``a|b`` with key ``c`` would share a bit.

HMAC-SHA256 is a pseudo-random function of the secret, so the biases and bits behave as the
independent draws the analysis assumes, and nobody without the secret can tell them apart from
such draws. The 64 first bits of each digest give a uniform number in ``[0, 1)`` (53 bits used).

The cutoff ``t = 0.01`` (:data:`CUTOFF`)
-----------------------------------------
Tardos takes ``t = 1/(300c)``: his proof bounds an innocent's score term by term with
``eˣ ≤ 1 + x + x²``, which needs ``α √((1−t)/t)`` below 1.79 for his ``α``. The cutoff is
otherwise a free parameter (Škorić, Vladimirova, Celik and Talstra 2008 replace Tardos'
constants by variables; Laarhoven and de Weger 2014 optimise it).
Here it is chosen for this node's use: about 30 partners, coalitions of one to three, a fixed
code that cannot change with the coalition size (changing ``t`` changes every bias, so ``t`` is
part of :data:`SCHEME`, which the ledger records with each disclosure). A larger ``t`` keeps the
largest score term, ``√((1−t)/t) = 9.95`` at ``t = 0.01``, small, which lightens the innocent
score's upper tail and lowers the threshold, and it gives a single leaker more score per mark
(``E[2√(p(1−p))]`` = 0.715 at ``t = 0.01`` against 0.663 at ``t = 1/900``); it costs large
coalitions, whose guaranteed score per mark falls. With the sufficient length of
:func:`code_length` (n = 30, ε = 10⁻³, 1 % misses), ``t = 0.01`` needs 97, 323, 707, 1220 and
1891 marks for c = 1 … 5; ``t = 1/900`` needs 142, 420, 823, 1343 and 1981; ``t = 0.03`` needs
76, 267, 702, 1340 and 2329. ``t = 0.01`` is close to the best for c = 3 without giving up c = 4
or 5.

The symmetric score (Škorić, Katzenbeisser and Celik 2008)
----------------------------------------------------------
For a readable mark with leaked bit ``y`` and bias ``p``, let ``a = p`` if ``y = 1`` and
``a = 1 − p`` if ``y = 0``: the probability that a partner's bit agrees with ``y``. Partner
``j`` with bit ``x`` scores

- ``+√((1−a)/a)`` if ``x = y``, and ``−√(a/(1−a))`` if ``x ≠ y``,

that is ``+√((1−p)/p)`` for ``x = y = 1``, ``−√(p/(1−p))`` for ``x = 0, y = 1``,
``+√(p/(1−p))`` for ``x = y = 0`` and ``−√((1−p)/p)`` for ``x = 1, y = 0``. An unreadable mark
scores 0 for everybody. An innocent partner's bit is independent of everything the coalition
saw, so it agrees with ``y`` with probability ``a``: its term has mean
``a√((1−a)/a) − (1−a)√(a/(1−a)) = 0`` and variance ``(1−a) + a = 1``, whatever ``y`` and ``p``.

The threshold: a Chernoff bound on the innocent's score, given the leak
-----------------------------------------------------------------------
Given the biases ``pᵢ`` and leaked bits ``yᵢ`` of the m readable marks, an innocent's score
``S`` is a sum of m independent two-valued terms with the moment generating function
``Mᵢ(α) = aᵢ e^{α gᵢ} + (1−aᵢ) e^{−α/gᵢ}``, ``gᵢ = √((1−aᵢ)/aᵢ)``. For every ``α > 0``,
``P(S ≥ Z) ≤ exp(K(α) − αZ)`` with ``K = Σ ln Mᵢ`` (Chernoff). :func:`leak_threshold` takes
the smallest ``Z`` for which this bound is ``ε/n`` (``Z = K'(α*)`` where
``α*K'(α*) − K(α*) = ln(n/ε)``; ``K`` is convex, so ``α*`` is unique), and the union bound over
the n partners makes the probability that *any* innocent partner is accused at most ``ε``.

This is Furon and Desoubeaux's "operational mode" (2014): the threshold is set from the leak
actually found and the secret biases, not from a worst case over all leaks. It is a rigorous
bound, not the Gaussian approximation (Simone and Škorić 2012 show where that fails), and it
holds for *every* coalition, of any size and strategy, even one that chooses which marks to
destroy and ignores the marking assumption: it needs only that the innocent partner's copy was
not among those the leak was made from. Unreadable marks leave ``K`` unchanged; a misread mark
lowers the leakers' scores but leaves the bound on innocents valid.

Because it depends on the leak, this threshold is not a function of m alone. :func:`threshold`
gives the a-priori threshold for m readable marks, by the same Chernoff argument with each
``Mᵢ`` replaced by ``Φ(α) = E_p[max(M(α; p), M(α; 1−p))]`` over the arcsine law: valid for any
strategy that does not choose which marks stay readable. By Jensen's inequality the leak's
threshold is rarely above it (for the standard attacks it is about 10 % lower at m = 700), so
it is the conservative figure for planning: :func:`code_length` uses it.

Code length
-----------
The literature's asymptotic length for the symmetric score with the arcsine law is
``(π²/2) c² ln(n/ε)``, "about 4.93 %" of Tardos' ``100 c² ln(n/ε)`` (Laarhoven and de Weger 2014,
in the limit of large c; Škorić et al. 2008 reach the same order under the Gaussian
approximation): 458 marks for n = 30, c = 3, ε = 10⁻³.
:func:`code_length` gives a sufficient length for this code and threshold instead: the smallest
m at which a coalition of c, whatever its strategy under the marking assumption, has an average
member's score above :func:`threshold` with probability ``1 − miss`` (so at least one member is
accused). The coalition's score per mark is at least ``μ_c`` (0.715, 0.715, 0.687 for c = 1, 2,
3, against ``2/π`` as c grows); its spread uses the central limit theorem, which only affects
how often a colluder escapes, never the false-accusation bound.

References
----------
- G. Tardos, "Optimal probabilistic fingerprint codes", J. ACM 55(2), 2008 (STOC 2003).
- B. Škorić, S. Katzenbeisser, M. U. Celik, "Symmetric Tardos fingerprinting codes for arbitrary
  alphabet sizes", Designs, Codes and Cryptography 46(2):137-166, 2008.
- B. Škorić, T. U. Vladimirova, M. Celik, J. C. Talstra, "Tardos fingerprinting is better than
  we thought", IEEE Trans. Information Theory 54(8), 2008 (arXiv:cs/0607131).
- A. Simone, B. Škorić, "Accusation probabilities in Tardos codes: beyond the Gaussian
  approximation", Designs, Codes and Cryptography 63:379-412, 2012.
- T. Laarhoven, B. de Weger, "Optimal symmetric Tardos traitor tracing schemes", Designs, Codes
  and Cryptography, 2014, doi:10.1007/s10623-012-9718-y (arXiv:1107.3441).
- T. Furon, M. Desoubeaux, "Tardos codes for real", IEEE WIFS 2014,
  doi:10.1109/WIFS.2014.7084298 (hal-01066043).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

SCHEME = "tardos-symmetric/arcsine-cutoff-0.01/hmac-sha256/v1"
"""The name of this code, recorded with every disclosure that carries it."""

CUTOFF = 0.01
"""``t``: every bias lies in ``[t, 1 − t]``. Part of :data:`SCHEME`; never change it in place."""

MIN_SECRET_BYTES = 16

MarkKey = bytes | str
"""The name of one mark, e.g. ``f"{object_id}|{version}|{slot}"``; a str is UTF-8 encoded."""

FloatArray = npt.NDArray[np.float64]
BitArray = npt.NDArray[np.uint8]

_R0 = math.asin(math.sqrt(CUTOFF))
_R1 = math.pi / 2 - _R0
_QUADRATURE_NODES = 4096
_ALPHA_CAP = 1e6
_ALPHA_PRECISION = 1e-6  # relative; Z is flat in α at its optimum, so this is ample


# --- the code ----------------------------------------------------------------------------------


def bias(secret: bytes, key: MarkKey) -> float:
    """The secret bias of the mark ``key``: arcsine-distributed on ``[CUTOFF, 1 − CUTOFF]``."""
    r = _R0 + (_R1 - _R0) * _uniform(_check_secret(secret), b"bias|" + _key_bytes(key))
    return math.sin(r) ** 2


def bit(secret: bytes, partner: str, key: MarkKey) -> int:
    """Partner ``partner``'s bit at the mark ``key``: 1 with probability ``bias(secret, key)``."""
    u = _uniform(_check_secret(secret), _bit_message(partner, _key_bytes(key)))
    return int(u < bias(secret, key))


def biases(secret: bytes, keys: Iterable[MarkKey]) -> FloatArray:
    """:func:`bias` of every key, as an array."""
    _check_secret(secret)
    r = np.array([_uniform(secret, b"bias|" + _key_bytes(key)) for key in keys], dtype=np.float64)
    return np.sin(_R0 + (_R1 - _R0) * r) ** 2


def codeword(secret: bytes, partner: str, keys: Sequence[MarkKey]) -> BitArray:
    """Partner ``partner``'s bits at ``keys``, as an array (:func:`bit` of each key)."""
    raw = [_key_bytes(key) for key in keys]
    return _bits(secret, partner, raw, biases(secret, raw))


# --- scores and thresholds ---------------------------------------------------------------------


def scores(p: npt.ArrayLike, codewords: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
    """The symmetric score of each row of ``codewords`` (partners x marks) against the leaked
    bits ``y`` at marks of bias ``p``. Only readable marks belong in these arrays."""
    p_, y_ = _check_marks(p, y)
    x = np.asarray(codewords)
    if x.ndim != 2 or x.shape[1] != p_.size:
        raise ValueError(f"codewords must be partners x {p_.size} marks, got shape {x.shape}")
    if not np.isin(x, (0, 1)).all():
        raise ValueError("codeword bits must be 0 or 1")
    a = np.where(y_ == 1, p_, 1.0 - p_)
    g = np.sqrt((1.0 - a) / a)
    return np.where(x == y_, g, -1.0 / g).sum(axis=1)


def false_accusation_bound(score: float, p: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """An upper bound on the probability that one innocent partner scores ``score`` or more
    against the leaked bits ``y`` at marks of bias ``p`` (the Chernoff bound of the module
    docstring, at its best ``α``). Multiply by the number of partners for "any innocent"."""
    log_mgf = _leak_log_mgf(*_check_marks(p, y))
    if not math.isfinite(score):
        raise ValueError(f"score must be a finite number, got {score!r}")
    if score <= 0:
        return 1.0
    # K'(α) rises from K'(0) = 0 towards the largest possible score: find K'(α) = score.
    lo, hi = 0.0, 1.0
    while log_mgf(hi)[1] < score and hi < _ALPHA_CAP:
        lo, hi = hi, hi * 2
    while hi - lo > _ALPHA_PRECISION * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if log_mgf(mid)[1] < score else (lo, mid)
    k, _ = log_mgf(hi)
    return min(1.0, math.exp(k - hi * score))


def leak_threshold(p: npt.ArrayLike, y: npt.ArrayLike, partners: int, epsilon: float) -> float:
    """The accusation threshold for a leak: the smallest score that no innocent partner among
    ``partners`` reaches with probability above ``epsilon``, given the leaked bits ``y`` at
    readable marks of bias ``p``. ``inf`` when the marks are too few to accuse anybody."""
    return _chernoff_threshold(
        _leak_log_mgf(*_check_marks(p, y)), _log_n_over_eps(partners, epsilon)
    )


def threshold(readable_marks: int, partners: int, epsilon: float) -> float:
    """The a-priori threshold for ``readable_marks`` marks: as :func:`leak_threshold`, but for
    any leak whose readable marks were not chosen by the coalition (a planning figure)."""
    if isinstance(readable_marks, bool) or not isinstance(readable_marks, int):
        raise ValueError(f"readable_marks must be an integer, got {readable_marks!r}")
    if readable_marks < 0:
        raise ValueError(f"readable_marks must not be negative, got {readable_marks}")
    log_n_eps = _log_n_over_eps(partners, epsilon)
    if readable_marks == 0:
        return math.inf

    def log_mgf(alpha: float) -> tuple[float, float]:
        k, dk = _arcsine_log_mgf(alpha)
        return readable_marks * k, readable_marks * dk

    return _chernoff_threshold(log_mgf, log_n_eps)


def code_length(colluders: int, epsilon: float, partners: int, miss: float = 0.01) -> int:
    """A sufficient number of readable marks for a leak by ``colluders`` partners among
    ``partners``: at least one of them accused with probability ``1 − miss`` and any innocent
    with probability at most ``epsilon``, under any strategy that keeps the marking assumption."""
    if isinstance(colluders, bool) or not isinstance(colluders, int) or colluders < 1:
        raise ValueError(f"colluders must be a positive integer, got {colluders!r}")
    if not 0.0 < miss < 0.5:
        raise ValueError(f"miss must be in (0, 0.5), got {miss!r}")
    _log_n_over_eps(partners, epsilon)
    mean, variance = coalition_score(colluders)
    z = NormalDist().inv_cdf(1.0 - miss)

    def enough(m: int) -> bool:
        return m * mean - z * math.sqrt(variance * m) >= colluders * threshold(m, partners, epsilon)

    hi = 1
    while not enough(hi):
        hi *= 2
    lo = hi // 2  # not enough (or 0), and the margin only grows with m from here
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if enough(mid) else (mid, hi)
    return hi


@cache
def coalition_score(colluders: int) -> tuple[float, float]:
    """The least expected coalition score per mark over all strategies that keep the marking
    assumption (a mark where all colluders agree is left as it is), and its variance per mark."""
    p = _arcsine_nodes()
    g = np.sqrt((1.0 - p) / p)
    mean, second = 0.0, 0.0
    for ones in range(colluders + 1):
        weight = math.comb(colluders, ones) * p**ones * (1.0 - p) ** (colluders - ones)
        score_if_1 = ones * g - (colluders - ones) / g  # the coalition's sum when y = 1
        if_1 = float(np.mean(weight * score_if_1))
        if ones == 0:
            mean -= if_1
        elif ones == colluders:
            mean += if_1
        else:
            mean += min(if_1, -if_1)
        second += float(np.mean(weight * score_if_1**2))
    return mean, second - mean * mean


# --- accusation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suspect:
    partner: str
    score: float
    accused: bool


@dataclass(frozen=True)
class Accusation:
    """Every partner's score, highest first; the threshold; how many marks could be read."""

    suspects: tuple[Suspect, ...]
    threshold: float
    marks_read: int
    epsilon: float

    @property
    def accused(self) -> tuple[str, ...]:
        return tuple(s.partner for s in self.suspects if s.accused)


def accuse(
    secret: bytes,
    partners: Sequence[str],
    observed: Mapping[str, int | None] | Mapping[bytes, int | None],
    epsilon: float = 1e-3,
) -> Accusation:
    """Score every partner against the bits read from a leak (``None``: the mark could not be
    read) and accuse those at or above :func:`leak_threshold`, so that the probability of
    accusing any innocent partner is at most ``epsilon``."""
    _check_secret(secret)
    if len(set(partners)) != len(partners):
        raise ValueError("partners must not repeat")
    readable: dict[bytes, int] = {}
    seen: set[bytes] = set()
    for key, value in observed.items():
        raw = _key_bytes(key)
        if raw in seen:
            raise ValueError(f"mark key {raw!r} is given twice")
        seen.add(raw)
        if value is None:
            continue
        if isinstance(value, bool) or value not in (0, 1):
            raise ValueError(f"a leaked bit must be 0, 1 or None, got {value!r} at {raw!r}")
        readable[raw] = value
    keys = list(readable)
    p = biases(secret, keys)
    y = np.array([readable[key] for key in keys], dtype=np.uint8)
    z = leak_threshold(p, y, len(partners), epsilon)
    if keys:
        matrix = np.stack([_bits(secret, partner, keys, p) for partner in partners])
        totals = [float(s) for s in scores(p, matrix, y)]
    else:
        totals = [0.0] * len(partners)
    suspects = sorted(
        (Suspect(partner, s, s >= z) for partner, s in zip(partners, totals, strict=True)),
        key=lambda s: (-s.score, s.partner),
    )
    return Accusation(tuple(suspects), z, len(keys), epsilon)


# --- internals ---------------------------------------------------------------------------------


def _bits(secret: bytes, partner: str, keys: Sequence[bytes], p: FloatArray) -> BitArray:
    u = np.array([_uniform(secret, _bit_message(partner, key)) for key in keys], dtype=np.float64)
    return (u < p).astype(np.uint8)


def _uniform(secret: bytes, message: bytes) -> float:
    digest = hmac.digest(secret, message, "sha256")
    return (int.from_bytes(digest[:8], "big") >> 11) * 2.0**-53


def _bit_message(partner: str, key: bytes) -> bytes:
    if not isinstance(partner, str) or not partner:
        raise ValueError(f"partner must be a non-empty string, got {partner!r}")
    name = partner.encode("utf-8")
    return b"bit|" + len(name).to_bytes(4, "big") + name + b"|" + key


def _key_bytes(key: MarkKey) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, bytes):
        return key
    raise ValueError(f"a mark key must be bytes or str, got {key!r}")


def _check_secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the node secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def _check_marks(p: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, BitArray]:
    p_ = np.asarray(p, dtype=np.float64)
    y_ = np.asarray(y)
    if p_.ndim != 1 or y_.shape != p_.shape:
        raise ValueError(f"p and y must be 1-d and of one length, got {p_.shape} and {y_.shape}")
    if not ((p_ > 0.0) & (p_ < 1.0)).all():
        raise ValueError("biases must lie strictly between 0 and 1")
    if not np.isin(y_, (0, 1)).all():
        raise ValueError("leaked bits must be 0 or 1 (leave unreadable marks out)")
    return p_, y_.astype(np.uint8)


def _log_n_over_eps(partners: int, epsilon: float) -> float:
    if isinstance(partners, bool) or not isinstance(partners, int) or partners < 1:
        raise ValueError(f"partners must be a positive integer, got {partners!r}")
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must be in (0, 1), got {epsilon!r}")
    return math.log(partners / epsilon)


LogMgf = Callable[[float], tuple[float, float]]
"""``α ↦ (K(α), K'(α))``: the log moment generating function of an innocent's score."""


def _chernoff_threshold(log_mgf: LogMgf, log_n_eps: float) -> float:
    """The least ``Z = (K(α) + L)/α`` over ``α > 0``, found where ``αK'(α) − K(α) = L``.

    That function of ``α`` rises from ``−L`` (``K`` is convex and ``K(0) = K'(0) = 0``); if it
    never reaches 0, even a perfect match is not rare enough and nobody can be accused. The
    value returned is ``(K(α) + L)/α`` at the upper end of the bracket, which is a valid
    threshold for that ``α`` whatever the bisection's precision (and, ``Z`` being flat in ``α``
    at its least value, within about 10⁻¹² of it).
    """

    def excess(alpha: float) -> float:
        k, dk = log_mgf(alpha)
        return alpha * dk - k - log_n_eps

    lo, hi = 0.0, 1.0
    while excess(hi) < 0:
        if hi >= _ALPHA_CAP:
            return math.inf
        lo, hi = hi, hi * 2
    while hi - lo > _ALPHA_PRECISION * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if excess(mid) < 0 else (lo, mid)
    return (log_mgf(hi)[0] + log_n_eps) / hi


def _branch(alpha: float, a: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``ln M(α; a)`` and its derivative in ``α``, per mark, for agreement probabilities ``a``."""
    g = np.sqrt((1.0 - a) / a)
    up = np.log(a) + alpha * g
    down = np.log1p(-a) - alpha / g
    log_m = np.logaddexp(up, down)
    w = np.exp(up - log_m)  # the probability of agreeing, tilted by α
    return log_m, w * g - (1.0 - w) / g


def _leak_log_mgf(p: FloatArray, y: BitArray) -> LogMgf:
    a = np.where(y == 1, p, 1.0 - p)

    def log_mgf(alpha: float) -> tuple[float, float]:
        log_m, d = _branch(alpha, a)
        return float(log_m.sum()), float(d.sum())

    return log_mgf


@cache
def _arcsine_nodes() -> FloatArray:
    """Midpoint nodes of ``p = sin²(r)``, ``r`` uniform on ``[r₀, π/2 − r₀]``: equal weights."""
    r = _R0 + (np.arange(_QUADRATURE_NODES) + 0.5) * (_R1 - _R0) / _QUADRATURE_NODES
    nodes = np.sin(r) ** 2
    nodes.setflags(write=False)
    return nodes


def _arcsine_log_mgf(alpha: float) -> tuple[float, float]:
    """``ln Φ(α)`` and its derivative, ``Φ(α) = E_p[max(M(α; p), M(α; 1 − p))]``."""
    p = _arcsine_nodes()
    one, done = _branch(alpha, p)
    zero, dzero = _branch(alpha, 1.0 - p)
    log_m = np.maximum(one, zero)
    d = np.where(one >= zero, done, dzero)
    top = float(log_m.max())
    w = np.exp(log_m - top)
    total = float(w.sum())
    return top + math.log(total / p.size), float((w * d).sum() / total)
