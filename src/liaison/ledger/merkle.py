"""The Merkle tree of RFC 9162 section 2.1: hashes, proofs and their verification.

The ledger stores the hash of every *perfect* subtree, addressed as ``(level, index)``: node
``(L, i)`` covers leaves ``[i * 2**L, (i + 1) * 2**L)`` and level 0 holds the leaf hashes. Nodes
on the ragged right edge of a tree are never stored, because they change as the log grows.

A proof element is either one stored node or, at most once per proof, an *ephemeral* node: the
hash of an incomplete right-edge subtree, folded right to left from the stored nodes that make it
up. :func:`inclusion_nodes` and :func:`consistency_nodes` say which nodes to read (all at once,
O(log n) of them) and :meth:`ProofPlan.assemble` builds the proof from them; this follows
transparency-dev/merkle ``proof/proof.go`` and ``compact/``.

Verification follows the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step and
raises :class:`~liaison.errors.InvalidProof`; it never returns a boolean to forget to check.
:func:`inclusion_proof` and :func:`consistency_proof` are the RFC's recursive definitions over a
full list of leaf hashes: the naive reference the stored-node plans are tested against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain

from liaison.errors import InvalidProof

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""

NewNode = tuple[int, int, bytes]
"""``(level, index, hash)`` of a perfect subtree completed by an append."""

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the 0x00 prefix keeps a leaf from passing as an inner node."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), the hash of an inner node."""
    return _sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The tree head MTH over ``leaf_hashes``, computed level by level (no recursion).

    Pairing neighbours and carrying an odd last node up unchanged gives the RFC's tree, whose
    left subtree is always the largest power of two smaller than the whole.
    """
    _check_hashes("leaf hash", leaf_hashes)
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        upper = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            upper.append(level[-1])
        level = upper
    return level[0]


# --- compact ranges --------------------------------------------------------------------------


def range_nodes(size: int) -> list[NodeId]:
    """The perfect subtrees that make up ``[0, size)``, left to right (the right frontier).

    One per set bit of ``size``, largest first: these are what an appender needs to go on.
    """
    _check_size("size", size)
    return _range_nodes(0, size)


def root_from_range(hashes: Sequence[bytes]) -> bytes:
    """Fold the hashes of :func:`range_nodes` (left to right) into the tree head."""
    _check_hashes("range hash", hashes)
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _decompose(begin: int, end: int) -> tuple[int, int]:
    """Bit masks of the node sizes on the left and right border of ``[begin, end)``.

    transparency-dev/merkle ``compact.Decompose``: the left part lies right of the path to leaf
    ``begin - 1``, the right part left of the path to leaf ``end``, both below where they meet.
    """
    if begin == 0:
        return 0, end
    xbegin = begin - 1
    mask = (1 << ((xbegin ^ end).bit_length() - 1)) - 1
    return ~xbegin & mask, end & mask


def _range_nodes(begin: int, end: int) -> list[NodeId]:
    """The perfect subtrees covering ``[begin, end)``, left to right."""
    left, right = _decompose(begin, end)
    nodes: list[NodeId] = []
    position = begin
    while left:  # left border: growing levels
        level = (left & -left).bit_length() - 1
        nodes.append((level, position >> level))
        position += 1 << level
        left &= left - 1
    while right:  # right border: shrinking levels
        level = right.bit_length() - 1
        nodes.append((level, position >> level))
        position += 1 << level
        right ^= 1 << level
    return nodes


# --- proofs from stored nodes ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """How to build one proof from stored perfect subtrees.

    ``elements`` has one entry per proof hash, in proof order. An entry of one node is that
    node's hash; an entry of several is the ephemeral node: its nodes, left to right, are
    folded right to left (``node_hash(left, acc)``), the way :func:`root_from_range` does.
    """

    elements: tuple[tuple[NodeId, ...], ...]

    @property
    def node_ids(self) -> tuple[NodeId, ...]:
        """Every node to read, each once: fetch them all in one query."""
        return tuple(chain.from_iterable(self.elements))

    def assemble(self, hashes: Mapping[NodeId, bytes]) -> list[bytes]:
        """The proof, from the hashes of :attr:`node_ids` (read from storage)."""
        missing = [node for node in self.node_ids if node not in hashes]
        if missing:
            raise ValueError(f"proof nodes missing from storage: {missing}")
        proof = []
        for element in self.elements:
            _check_hashes("stored node hash", [hashes[node] for node in element])
            result = hashes[element[-1]]
            for node in reversed(element[:-1]):
                result = node_hash(hashes[node], result)
            proof.append(result)
        return proof


def inclusion_nodes(index: int, size: int) -> ProofPlan:
    """The plan of the inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise ValueError(f"leaf index {index} is not below tree size {size}")
    return _plan(index, 0, size, skip_first=True)


def consistency_nodes(old_size: int, new_size: int) -> ProofPlan:
    """The plan of the consistency proof from ``old_size`` to ``new_size`` (0 < old <= new).

    The proof starts at the largest perfect subtree ending at ``old_size`` and is its inclusion
    path in the new tree; when the old tree is itself perfect, its root is known to the
    verifier and left out.
    """
    _check_size("old size", old_size)
    _check_size("new size", new_size)
    if old_size > new_size:
        raise ValueError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        raise ValueError("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        return ProofPlan(())
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> level
    return _plan(index, level, new_size, skip_first=old_size & (old_size - 1) == 0)


def _plan(index: int, level: int, size: int, *, skip_first: bool) -> ProofPlan:
    """Nodes proving node ``(level, index)`` is in the tree of ``size`` leaves.

    transparency-dev/merkle ``proof.nodes``: siblings up to the *fork*, the node where the path
    to ``(level, index)`` leaves the path to leaf ``size``; then the fork's sibling, the
    ephemeral node covering ``[fork end, size)``; then the perfect subtrees left of the fork,
    lowest first.
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level = level + inner
    fork_index = index >> inner
    fork_begin = fork_index << fork_level
    fork_end = (fork_index + 1) << fork_level

    elements: list[tuple[NodeId, ...]] = [] if skip_first else [((level, index),)]
    for height in range(level, fork_level):
        elements.append(((height, (index >> (height - level)) ^ 1),))
    ephemeral = _range_nodes(fork_end, size)
    if ephemeral:
        elements.append(tuple(ephemeral))
    elements.extend((node,) for node in reversed(_range_nodes(0, fork_begin)))
    return ProofPlan(tuple(elements))


# --- appending -------------------------------------------------------------------------------


class Appender:
    """Grows a tree from its right frontier, reporting each perfect subtree it completes.

    Start from the frontier hashes of a tree of ``size`` leaves (the nodes of
    :func:`range_nodes`, left to right); :meth:`extend` appends leaf hashes and returns the new
    ``(level, index, hash)`` nodes to store: each leaf at level 0, then every parent it
    completes. Nothing else in the tree changes, so nothing else needs writing.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        _check_size("size", size)
        if len(frontier) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} frontier hashes, got {len(frontier)}"
            )
        _check_hashes("frontier hash", frontier)
        self._size = size
        self._frontier = list(frontier)

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """The hashes of :func:`range_nodes` for the current size, left to right."""
        return tuple(self._frontier)

    def root(self) -> bytes:
        """The current tree head."""
        return root_from_range(self._frontier)

    def append(self, leaf_hash: bytes) -> list[NewNode]:
        """Append one leaf hash; the new perfect nodes, lowest first."""
        return self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[NewNode]:
        """Append leaf hashes in order; the new perfect nodes in the order they were made.

        The hashes are checked before any is appended, so a bad batch changes nothing.
        """
        batch = list(leaf_hashes)
        _check_hashes("leaf hash", batch)
        created: list[NewNode] = []
        emit = created.append
        frontier = self._frontier
        pop, push = frontier.pop, frontier.append
        size = self._size
        for value in batch:
            emit((0, size, value))
            index, level = size, 0
            while index & 1:  # a right child: it completes its parent
                value = _sha256(b"\x01" + pop() + value).digest()
                index >>= 1
                level += 1
                emit((level, index, value))
            push(value)
            size += 1
        self._size = size
        return created


class Rebuilder:
    """Recomputes a whole tree from its leaf hashes, given in aligned chunks of
    ``2**chunk_level`` (only the last may be shorter): every perfect node once, a level at a
    time, for comparison in bulk with the stored ones (what ``ledger verify`` does), and the
    right frontier at any size within the chunk just added.

    Within a chunk each level is hashed pairwise from the one below; the chunks' roots grow an
    :class:`Appender` whose level 0 is ``chunk_level``: it makes the nodes above the chunks.
    """

    __slots__ = ("_before", "_chunk", "_levels", "_size", "_upper")

    def __init__(self, chunk_level: int) -> None:
        _check_size("chunk level", chunk_level)
        self._chunk = chunk_level
        self._upper = Appender()
        self._size = 0
        self._before: tuple[bytes, ...] = ()  # the frontier where the last chunk begins
        self._levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        return self._size

    def add(self, leaf_hashes: Sequence[bytes]) -> list[tuple[int, int, list[bytes]]]:
        """Append the next chunk of leaf hashes; the perfect nodes it completes, as
        ``(level, first index, hashes)``, one run per level from 0 up, each run left to right.
        """
        width = 1 << self._chunk
        if self._size % width:
            raise ValueError("only the last chunk may be shorter than 2**chunk_level")
        if not 0 < len(leaf_hashes) <= width:
            raise ValueError(f"a chunk holds 1 to {width} leaf hashes, got {len(leaf_hashes)}")
        _check_hashes("leaf hash", leaf_hashes)
        start = self._size
        level = list(leaf_hashes)
        levels = [level]
        while len(level) > 1:  # floor(n / 2**L) nodes at level L: each a perfect subtree
            pairs = zip(level[0::2], level[1::2], strict=False)  # an odd last node waits
            level = [_sha256(b"\x01" + left + right).digest() for left, right in pairs]
            levels.append(level)
        made = [(number, start >> number, hashes) for number, hashes in enumerate(levels)]
        self._before = self._upper.frontier
        if len(leaf_hashes) == width:
            for upper, index, value in self._upper.append(levels[self._chunk][0])[1:]:
                made.append((self._chunk + upper, index, [value]))
        self._levels = levels
        self._size = start + len(leaf_hashes)
        return made

    def frontier(self, size: int | None = None) -> tuple[bytes, ...]:
        """The hashes of :func:`range_nodes` of ``size`` (default: all leaves added), which
        must lie within the last chunk added."""
        size = self._size if size is None else size
        start = self._size - len(self._levels[0])
        if not start <= size <= self._size:
            raise ValueError(f"size {size} is not within the last chunk [{start}, {self._size}]")
        if size == self._size and len(self._levels[0]) == 1 << self._chunk:
            return self._upper.frontier  # the chunk's root has joined the nodes above
        # Below the chunk's width the bits of size are those of its offset in the chunk.
        hashes = list(self._before)
        offset, rest = 0, size - start
        for level in range(rest.bit_length() - 1, -1, -1):
            if rest >> level & 1:
                hashes.append(self._levels[level][offset >> level])
                offset += 1 << level
        return tuple(hashes)

    def root(self, size: int | None = None) -> bytes:
        """The tree head at ``size`` (default: all leaves added), within the last chunk."""
        return root_from_range(self.frontier(size))


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ---------------------------------------------


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` leaves with ``root``.

    Raises :class:`InvalidProof` on any failure.
    """
    _expect_hash("leaf hash", leaf_hash)
    _expect_hash("root", root)
    for position, element in enumerate(proof):
        _expect_hash(f"proof hash {position}", element)
    if index < 0 or size < 0:
        raise InvalidProof(f"negative leaf index {index} or tree size {size}")
    # 1. leaf_index >= tree_size fails.
    if index >= size:
        raise InvalidProof(f"leaf index {index} is not below tree size {size}")
    wanted = _inclusion_length(index, size)
    if len(proof) != wanted:
        raise InvalidProof(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size {size} "
            f"needs {wanted}"
        )
    # 2., 3.
    fn, sn, result = index, size - 1, leaf_hash
    # 4.
    for element in proof:
        if sn == 0:
            raise InvalidProof("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, element)
        fn >>= 1
        sn >>= 1
    # 5.
    if sn != 0:
        raise InvalidProof("inclusion proof is shorter than the path to the root")
    if result != root:
        raise InvalidProof(f"inclusion proof for leaf {index} does not lead to the tree root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``new_size`` with ``new_root`` extends the one of ``old_size``.

    Raises :class:`InvalidProof` on any failure. Equal sizes need equal roots and an empty
    proof. A proof from the empty tree is refused as meaningless, as transparency-dev/merkle
    does (RFC 9162 defines none): every tree extends the empty one, so a caller holding
    a checkpoint of size 0 has nothing to verify.
    """
    _expect_hash("old root", old_root)
    _expect_hash("new root", new_root)
    for position, element in enumerate(proof):
        _expect_hash(f"proof hash {position}", element)
    if old_size < 0 or new_size < 0:
        raise InvalidProof(f"negative tree size {old_size} or {new_size}")
    if old_size > new_size:
        raise InvalidProof(f"old tree size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        raise InvalidProof("a consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise InvalidProof("equal tree sizes need an empty consistency proof")
        if old_root != new_root:
            raise InvalidProof(f"two different roots for the same tree size {old_size}")
        return
    # 1.
    if not proof:
        raise InvalidProof("empty consistency proof between different tree sizes")
    wanted = _consistency_length(old_size, new_size)
    if len(proof) != wanted:
        raise InvalidProof(
            f"consistency proof has {len(proof)} hashes; sizes {old_size} to {new_size} "
            f"need {wanted}"
        )
    # 2.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3., 4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for element in path[1:]:
        if sn == 0:
            raise InvalidProof("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        raise InvalidProof("consistency proof is shorter than the path to the root")
    if fr != old_root:
        raise InvalidProof(f"consistency proof does not lead to the old root (size {old_size})")
    if sr != new_root:
        raise InvalidProof(f"consistency proof does not lead to the new root (size {new_size})")


def _inclusion_length(index: int, size: int) -> int:
    """Siblings below the level where the paths to ``index`` and ``size - 1`` meet, plus one
    left sibling for each right turn above it."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _consistency_length(old_size: int, new_size: int) -> int:
    """The inclusion path of the last perfect subtree of the old tree, plus that subtree's
    own hash unless it is the whole old tree."""
    last = old_size - 1
    fork = (last ^ (new_size - 1)).bit_length()
    border = (last >> fork).bit_count()
    shift = (old_size & -old_size).bit_length() - 1
    seed = 0 if old_size & (old_size - 1) == 0 else 1
    return seed + fork - shift + border


# --- the RFC's recursive definitions, as a reference -----------------------------------------


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 2.1.3.1, straight from all the leaf hashes."""
    _check_hashes("leaf hash", leaf_hashes)
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index {index} is not below tree size {len(leaf_hashes)}")
    return _path(index, leaf_hashes, 0, len(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 2.1.4.1, from all the leaf hashes."""
    _check_hashes("leaf hash", leaf_hashes)
    if not 0 < old_size <= new_size <= len(leaf_hashes):
        raise ValueError(
            f"need 0 < old size {old_size} <= new size {new_size} <= {len(leaf_hashes)} leaves"
        )
    return _subproof(old_size, leaf_hashes, 0, new_size, True)


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) by the RFC's recursive definition (depth log n)."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def _path(m: int, leaves: Sequence[bytes], lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves, lo, lo + k), _mth(leaves, lo + k, hi)]
    return [*_path(m - k, leaves, lo + k, hi), _mth(leaves, lo, lo + k)]


def _subproof(m: int, leaves: Sequence[bytes], lo: int, hi: int, whole: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [_mth(leaves, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves, lo, lo + k, whole), _mth(leaves, lo + k, hi)]
    return [*_subproof(m - k, leaves, lo + k, hi, False), _mth(leaves, lo, lo + k)]


# --- argument checks -------------------------------------------------------------------------


def _check_size(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value!r}")


def _check_hashes(what: str, hashes: Iterable[bytes]) -> None:
    # In C first: verify checks a million leaf hashes.
    if (
        isinstance(hashes, list | tuple)
        and set(map(type, hashes)) <= {bytes}
        and set(map(len, hashes)) <= {HASH_SIZE}
    ):
        return
    for value in hashes:
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {value!r}")


def _expect_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise InvalidProof(f"{what} is not a {HASH_SIZE}-byte SHA-256 hash")
