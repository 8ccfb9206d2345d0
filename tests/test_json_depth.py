"""core.json_depth: the nesting check a JSON body passes before anything parses it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from asyncpress.core.json_depth import MAX_DEPTH, too_deep

STRINGS = ["", "plain", "[{", "}]", 'say "hi" [', "back\\slash", "\\", '\\"]', "ünï[cødé"]


def _document(rng: random.Random, depth: int) -> Any:
    """A random JSON value nested exactly ``depth`` levels (0: a scalar)."""
    if depth == 0:
        return rng.choice([rng.choice(STRINGS), rng.randint(-5, 5), None, True, 1.5])
    # Siblings stay shallow, so a document's size grows with its depth only.
    children = [_document(rng, rng.randint(0, min(depth - 1, 2))) for _ in range(rng.randint(0, 3))]
    children.append(_document(rng, depth - 1))  # one child reaches the full depth
    rng.shuffle(children)
    if rng.random() < 0.5:
        return children
    return {f"{rng.choice(STRINGS)}{n}": child for n, child in enumerate(children)}


@pytest.mark.parametrize("seed", range(40))
def test_valid_json_within_the_limit_always_passes(seed: int) -> None:
    rng = random.Random(seed)
    depth = rng.choice([1, 2, 5, MAX_DEPTH // 2, MAX_DEPTH])
    document = json.dumps(_document(rng, depth), ensure_ascii=rng.random() < 0.5)
    assert not too_deep(document.encode())


@pytest.mark.parametrize("seed", range(40))
def test_valid_json_past_twice_the_limit_always_fails(seed: int) -> None:
    rng = random.Random(seed)
    document = json.dumps(_document(rng, rng.randint(2 * MAX_DEPTH + 1, 4 * MAX_DEPTH)))
    assert too_deep(document.encode())


@pytest.mark.parametrize(
    "document",
    [
        b"[" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b"[{" * 5_000 + b"}]" * 5_000,
        b'{"user": ' + b"[" * 100_000,
    ],
    ids=["open", "closed", "objects", "alternating", "inside-a-form"],
)
def test_hostile_nesting_is_caught(document: bytes) -> None:
    assert too_deep(document)


@pytest.mark.parametrize(
    "document",
    [
        json.dumps([[n, {"x": [n]}] for n in range(50_000)]).encode(),  # wide, shallow
        json.dumps({"body": "[" * 100_000 + '"' + "{" * 1000}).encode(),  # brackets in a string
        b'{"a": [1, 2}' * 200,  # invalid but shallow: the parser says what is wrong
    ],
    ids=["wide", "brackets-in-strings", "invalid-shallow"],
)
def test_what_is_not_deep_is_left_to_the_parser(document: bytes) -> None:
    assert not too_deep(document)
