"""liaison.ledger.merkle: RFC 9162 vectors, the transparency-dev/merkle probes, and the proofs
built from stored perfect subtrees checked against the RFC's recursive definitions."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.errors import InvalidProof
from liaison.ledger.merkle import (
    EMPTY_ROOT,
    Appender,
    ProofPlan,
    Rebuilder,
    consistency_nodes,
    consistency_proof,
    inclusion_nodes,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_nodes,
    root,
    root_from_range,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import examples

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "rfc9162_merkle.json").read_text()
)
VECTOR_LEAVES = [leaf_hash(bytes.fromhex(entry)) for entry in VECTORS["leaf_inputs"]]

# Liaison refuses hashes that are not 32 bytes, even where the outcome would not depend on them:
# this upstream probe has equal sizes and equal (but 12-byte, "don't care") roots.
STRICTER_THAN_UPSTREAM = {
    "testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json",
}

# One tree for the property tests, with every perfect subtree hashed from scratch by root().
MAX_SIZE = 2048
LEAVES = [leaf_hash(b"liaison disclosure %d" % n) for n in range(MAX_SIZE)]
STORE = {
    (level, index): root(LEAVES[index << level : (index + 1) << level])
    for level in range(MAX_SIZE.bit_length())
    for index in range(MAX_SIZE >> level)
}
ROOTS = [EMPTY_ROOT]
_growing = Appender()
for _leaf in LEAVES:
    _growing.append(_leaf)
    ROOTS.append(_growing.root())

sizes = st.integers(min_value=1, max_value=MAX_SIZE)


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def flip(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def rejects(verify: Callable[..., None], *args: Any) -> bool:
    try:
        verify(*args)
    except InvalidProof:
        return True
    return False


def accepts(verify: Callable[..., None], *args: Any) -> bool:
    return not rejects(verify, *args)


def altered_proofs(proof: Sequence[bytes], extra: Sequence[bytes]) -> Iterator[str]:
    """Name every alteration of ``proof``; see :func:`alter`."""
    for position in range(len(proof)):
        yield f"flip {position}"
        yield f"drop {position}"
    for length in range(len(proof)):
        yield f"truncate {length}"
    for position in range(len(proof) + 1):
        for n in range(len(extra)):
            yield f"insert {n} at {position}"


def alter(proof: Sequence[bytes], how: str, bit: int, extra: Sequence[bytes]) -> list[bytes]:
    words = how.split()
    changed = list(proof)
    if words[0] == "flip":
        changed[int(words[1])] = flip(changed[int(words[1])], bit)
    elif words[0] == "drop":
        del changed[int(words[1])]
    elif words[0] == "truncate":
        del changed[int(words[1]) :]
    else:
        changed.insert(int(words[3]), extra[int(words[1])])
    return changed


# --- vectors -------------------------------------------------------------------------------------


def test_leaf_and_node_hashes_match_the_vectors() -> None:
    levels = VECTORS["node_hashes"]
    assert [h.hex() for h in VECTOR_LEAVES] == levels[0]
    for level in range(1, len(levels)):
        for index, expected in enumerate(levels[level]):
            below = levels[level - 1]
            left, right = bytes.fromhex(below[2 * index]), bytes.fromhex(below[2 * index + 1])
            assert node_hash(left, right).hex() == expected


def test_roots_match_the_vectors_by_every_route() -> None:
    created = {(lv, ix): h.hex() for lv, ix, h in Appender().extend(VECTOR_LEAVES)}
    stored = {
        (level, index): value
        for level, values in enumerate(VECTORS["node_hashes"])
        for index, value in enumerate(values)
    }
    assert created == stored
    appender = Appender()
    for size, expected in enumerate(VECTORS["roots"]):
        assert root(VECTOR_LEAVES[:size]).hex() == expected
        frontier = [bytes.fromhex(stored[node]) for node in range_nodes(size)]
        assert root_from_range(frontier).hex() == expected
        assert Appender(size, frontier).root().hex() == expected
        assert appender.root().hex() == expected
        if size < len(VECTOR_LEAVES):
            appender.append(VECTOR_LEAVES[size])
    assert EMPTY_ROOT.hex() == VECTORS["roots"][0]


@pytest.mark.parametrize("case", VECTORS["inclusion_proofs"], ids=str)
def test_inclusion_proof_table(case: dict[str, Any]) -> None:
    index, size = case["leaf_index_1based"] - 1, case["tree_size"]
    leaves = VECTOR_LEAVES[:size]
    expected = [bytes.fromhex(h) for h in case["proof"]]
    hashes = {(lv, ix): h for lv, ix, h in Appender().extend(leaves)}
    assert inclusion_proof(leaves, index) == expected
    assert inclusion_nodes(index, size).assemble(hashes) == expected
    verify_inclusion(leaves[index], index, size, expected, bytes.fromhex(VECTORS["roots"][size]))


@pytest.mark.parametrize("case", VECTORS["consistency_proofs"], ids=str)
def test_consistency_proof_table(case: dict[str, Any]) -> None:
    old, new = case["size1"], case["size2"]
    expected = [bytes.fromhex(h) for h in case["proof"]]
    hashes = {(lv, ix): h for lv, ix, h in Appender().extend(VECTOR_LEAVES[:new])}
    assert consistency_proof(VECTOR_LEAVES, old, new) == expected
    assert consistency_nodes(old, new).assemble(hashes) == expected
    roots = [bytes.fromhex(r) for r in VECTORS["roots"]]
    verify_consistency(old, new, roots[old], roots[new], expected)


@pytest.mark.parametrize("probe", VECTORS["inclusion_probes"], ids=lambda p: p["file"])
def test_inclusion_probe(probe: dict[str, Any]) -> None:
    args = (
        b64(probe["leafHash"]),
        probe["leafIdx"],
        probe["treeSize"],
        [b64(h) for h in probe["proof"]],
        b64(probe["root"]),
    )
    wants_error = probe["wantErr"] or probe["file"] in STRICTER_THAN_UPSTREAM
    assert rejects(verify_inclusion, *args) == wants_error, probe["desc"]


@pytest.mark.parametrize("probe", VECTORS["consistency_probes"], ids=lambda p: p["file"])
def test_consistency_probe(probe: dict[str, Any]) -> None:
    args = (
        probe["size1"],
        probe["size2"],
        b64(probe["root1"]),
        b64(probe["root2"]),
        [b64(h) for h in probe["proof"]],
    )
    wants_error = probe["wantErr"] or probe["file"] in STRICTER_THAN_UPSTREAM
    assert rejects(verify_consistency, *args) == wants_error, probe["desc"]


def test_invalid_proof_says_why() -> None:
    with pytest.raises(InvalidProof, match="not below tree size"):
        verify_inclusion(LEAVES[3], 3, 3, [], ROOTS[3])
    with pytest.raises(InvalidProof, match=r"has 1 hashes; .* needs 2"):
        verify_inclusion(LEAVES[0], 0, 3, [LEAVES[1]], ROOTS[3])
    with pytest.raises(InvalidProof, match="does not lead to the tree root"):
        verify_inclusion(LEAVES[0], 0, 2, [LEAVES[0]], ROOTS[2])
    with pytest.raises(InvalidProof, match="empty tree is meaningless"):
        verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    with pytest.raises(InvalidProof, match="different roots for the same tree size"):
        verify_consistency(5, 5, ROOTS[5], ROOTS[4], [])
    with pytest.raises(InvalidProof, match="not a 32-byte"):
        verify_consistency(4, 5, ROOTS[4][:31], ROOTS[5], [LEAVES[4]])


# --- trees and the stored nodes ------------------------------------------------------------------


def test_store_from_scratch_agrees_with_the_appender() -> None:
    assert {(lv, ix): h for lv, ix, h in Appender().extend(LEAVES)} == STORE


def mth(leaves: Sequence[bytes]) -> bytes:
    """MTH of RFC 9162 2.1.1, written out recursively as the RFC does."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(0, MAX_SIZE))
def test_root_agrees_with_the_recursive_definition(size: int) -> None:
    expected = mth(LEAVES[:size])
    assert root(LEAVES[:size]) == expected
    assert ROOTS[size] == expected
    assert root_from_range([STORE[node] for node in range_nodes(size)]) == expected


def test_range_nodes() -> None:
    assert range_nodes(0) == []
    assert range_nodes(1) == [(0, 0)]
    assert range_nodes(13) == [(3, 0), (2, 2), (0, 12)]
    assert range_nodes(16) == [(4, 0)]
    assert root_from_range([]) == EMPTY_ROOT


def test_small_trees_exhaustively() -> None:
    for size in range(1, 41):
        leaves = LEAVES[:size]
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert inclusion_nodes(index, size).assemble(STORE) == proof
            verify_inclusion(leaves[index], index, size, proof, ROOTS[size])
            for other in range(size):  # no proof verifies for another index
                if other != index:
                    assert rejects(verify_inclusion, leaves[index], other, size, proof, ROOTS[size])
        for old in range(1, size + 1):
            proof = consistency_proof(leaves, old, size)
            assert consistency_nodes(old, size).assemble(STORE) == proof
            verify_consistency(old, size, ROOTS[old], ROOTS[size], proof)


@settings(max_examples=examples(150), deadline=None)
@given(sizes, st.data())
def test_plan_shape(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    for plan in (inclusion_nodes(index, size), consistency_nodes(old, size)):
        assert sum(len(element) > 1 for element in plan.elements) <= 1  # one ephemeral node
        assert len(set(plan.node_ids)) == len(plan.node_ids)
        assert len(plan.node_ids) <= 2 * size.bit_length()
        for level, node_index in plan.node_ids:  # only perfect subtrees are stored
            assert (node_index + 1) << level <= size


# --- property tests: plans against the reference, corruption probes ------------------------------


@settings(max_examples=examples(120), deadline=None)
@given(sizes, st.data())
def test_inclusion(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    bit = data.draw(st.integers(0, 255), label="bit")
    leaf, tree_root = LEAVES[index], ROOTS[size]
    proof = inclusion_proof(LEAVES[:size], index)
    assert inclusion_nodes(index, size).assemble(STORE) == proof
    verify_inclusion(leaf, index, size, proof, tree_root)

    extra = [flip(leaf, bit), tree_root, leaf, EMPTY_ROOT]
    for how in altered_proofs(proof, extra):
        changed = alter(proof, how, bit, extra)
        assert rejects(verify_inclusion, leaf, index, size, changed, tree_root), how
    assert rejects(verify_inclusion, flip(leaf, bit), index, size, proof, tree_root)
    assert rejects(verify_inclusion, leaf, index, size, proof, flip(tree_root, bit))
    assert rejects(verify_inclusion, leaf, index, size, proof, EMPTY_ROOT)
    for other in {index - 1, index + 1, index ^ 1, index ^ 2, 0, size - 1, size, -1}:
        if other != index:
            assert rejects(verify_inclusion, leaf, other, size, proof, tree_root), other
    # Another size: the same proof may only pass where it is that size's own proof.
    for other in {size - 1, size + 1, size * 2, size // 2, index}:
        if 0 < other <= MAX_SIZE and other != size:
            honest = index < other and inclusion_proof(LEAVES[:other], index) == proof
            assert accepts(verify_inclusion, leaf, index, other, proof, ROOTS[other]) == honest


@settings(max_examples=examples(120), deadline=None)
@given(sizes, st.data())
def test_consistency(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(1, new), label="old")
    bit = data.draw(st.integers(0, 255), label="bit")
    old_root, new_root = ROOTS[old], ROOTS[new]
    proof = consistency_proof(LEAVES, old, new)
    assert consistency_nodes(old, new).assemble(STORE) == proof
    verify_consistency(old, new, old_root, new_root, proof)

    extra = [flip(new_root, bit), old_root, new_root, EMPTY_ROOT]
    for how in altered_proofs(proof, extra):
        changed = alter(proof, how, bit, extra)
        assert rejects(verify_consistency, old, new, old_root, new_root, changed), how
    assert rejects(verify_consistency, old, new, flip(old_root, bit), new_root, proof)
    assert rejects(verify_consistency, old, new, old_root, flip(new_root, bit), proof)
    if old != new:
        assert rejects(verify_consistency, old, new, new_root, old_root, proof)
        assert rejects(verify_consistency, new, old, new_root, old_root, proof)
    assert rejects(verify_consistency, 0, new, EMPTY_ROOT, new_root, proof)
    # Other sizes: the same proof may only pass where it is those sizes' own proof.
    for other in {old - 1, old + 1, old ^ 2, old * 2, old // 2}:
        if 0 < other <= new and other != old:
            honest = consistency_proof(LEAVES, other, new) == proof
            assert accepts(verify_consistency, other, new, ROOTS[other], new_root, proof) == honest
    for other in {new - 1, new + 1, new * 2, new // 2}:
        if old <= other <= MAX_SIZE and other != new:
            honest = consistency_proof(LEAVES, old, other) == proof
            assert accepts(verify_consistency, old, other, old_root, ROOTS[other], proof) == honest


# --- appending -----------------------------------------------------------------------------------


@settings(max_examples=examples(80), deadline=None)
@given(st.integers(0, MAX_SIZE), st.data())
def test_appender_resumes_from_the_stored_frontier(size: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, size), label="start")
    cut = data.draw(st.integers(start, size), label="cut")
    appender = Appender(start, [STORE[node] for node in range_nodes(start)])
    created = appender.extend(LEAVES[start:cut])
    for leaf in LEAVES[cut:size]:
        created += appender.append(leaf)

    completed = {
        node for node in STORE if start < (node[1] + 1) << node[0] <= size
    }  # perfect subtrees that end after ``start`` and within ``size``
    assert len(created) == len(completed)
    assert {(lv, ix): h for lv, ix, h in created} == {node: STORE[node] for node in completed}
    assert appender.size == size
    assert appender.root() == ROOTS[size]
    assert appender.frontier == tuple(STORE[node] for node in range_nodes(size))


def test_appender_refuses_bad_input_and_stays_as_it_was() -> None:
    with pytest.raises(ValueError, match="3 has 2 frontier hashes"):
        Appender(3, [LEAVES[0]])
    with pytest.raises(ValueError, match="non-negative"):
        Appender(-1)
    appender = Appender()
    appender.extend(LEAVES[:5])
    with pytest.raises(ValueError, match="32 bytes"):
        appender.extend([LEAVES[5], b"short"])
    assert appender.size == 5
    assert appender.root() == ROOTS[5]


def test_appender_is_fast() -> None:
    # Measured about 1.3 million leaves/s; this only catches an accidental slow path.
    appender = Appender()
    started = time.perf_counter()
    appender.extend(LEAVES * 10)
    assert time.perf_counter() - started < 1.0


# --- rebuilding, as verify does ------------------------------------------------------------------


@settings(max_examples=examples(80), deadline=None)
@given(st.integers(0, MAX_SIZE), st.integers(0, 6))
def test_rebuilder_makes_every_node_once_and_each_frontier(size: int, chunk_level: int) -> None:
    rebuilder = Rebuilder(chunk_level)
    width = 1 << chunk_level
    made: dict[tuple[int, int], bytes] = {}
    for start in range(0, size, width):
        for level, first, hashes in rebuilder.add(LEAVES[start : min(size, start + width)]):
            for index, value in enumerate(hashes, start=first):
                assert (level, index) not in made
                made[(level, index)] = value
        end = rebuilder.size
        for inside in range(start, end + 1):
            assert rebuilder.frontier(inside) == tuple(STORE[n] for n in range_nodes(inside))
            assert rebuilder.root(inside) == ROOTS[inside]
    assert made == {node: STORE[node] for node in STORE if (node[1] + 1) << node[0] <= size}
    assert rebuilder.root() == ROOTS[size]


def test_rebuilder_refuses_chunks_out_of_line() -> None:
    rebuilder = Rebuilder(2)
    with pytest.raises(ValueError, match="1 to 4 leaf hashes"):
        rebuilder.add(LEAVES[:5])
    with pytest.raises(ValueError, match="32 bytes"):
        rebuilder.add([LEAVES[0], b"short"])
    rebuilder.add(LEAVES[:3])
    with pytest.raises(ValueError, match="only the last chunk"):
        rebuilder.add(LEAVES[3:4])
    with pytest.raises(ValueError, match="not within the last chunk"):
        rebuilder.frontier(4)
    assert rebuilder.root() == ROOTS[3]


# --- arguments -----------------------------------------------------------------------------------


def test_plans_refuse_impossible_proofs() -> None:
    with pytest.raises(ValueError, match="not below tree size"):
        inclusion_nodes(5, 5)
    with pytest.raises(ValueError, match="larger than new size"):
        consistency_nodes(6, 5)
    with pytest.raises(ValueError, match="empty tree is meaningless"):
        consistency_nodes(0, 5)
    assert consistency_nodes(5, 5) == ProofPlan(())
    with pytest.raises(ValueError, match="missing from storage"):
        inclusion_nodes(0, 8).assemble({})
    with pytest.raises(ValueError, match="not below tree size"):
        inclusion_proof(LEAVES[:3], 3)
    with pytest.raises(ValueError, match="need 0 < old size"):
        consistency_proof(LEAVES[:3], 2, 4)


def test_ephemeral_node_is_folded_right_to_left() -> None:
    # Leaf 0 of a tree of 7: the third proof hash covers leaves [4, 7), stored as (1, 2), (0, 6).
    plan = inclusion_nodes(0, 7)
    assert plan.elements == (((0, 1),), ((1, 1),), ((1, 2), (0, 6)))
    assert plan.assemble(STORE)[2] == node_hash(STORE[(1, 2)], STORE[(0, 6)])
    assert plan.assemble(STORE)[2] == root(LEAVES[4:7])
