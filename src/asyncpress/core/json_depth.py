"""How deeply a JSON document nests, judged before anything parses it.

Python's ``json`` parser recurses once per level, counted against the
interpreter's recursion limit. A body of 100,000 ``[`` fails there, but
only after taking the stack to the limit, and anything that runs at that
depth meanwhile (a garbage-collected object's finalizer) fails with it.
RealWorld bodies nest three or four levels, so a document is refused
long before the parser could get near the limit.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64
MESSAGE = "is nested too deeply"

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def too_deep(document: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``document`` nests too deeply to parse.

    Never true of valid JSON nested at most ``limit`` levels; always true
    of JSON nested more than twice that. Invalid JSON in between is left to
    the parser, which reports it. Costs two byte counts for any body with
    at most ``limit`` brackets, and C-speed passes over the others.
    """
    if document.count(b"[") + document.count(b"{") <= limit:
        return False
    brackets = _outside_strings(document).translate(None, _NOT_BRACKETS)
    if re.search(rb"[\[{]{%d}" % (limit + 1), brackets):
        return True  # more than ``limit`` levels opened in a row
    # Each pass removes every innermost pair, so at least one level (at most
    # two: an emptied [] can leave a {} behind in the same pass). A wide
    # document collapses in a few passes; a deep one stops at ``limit``.
    passes = 0
    while brackets and passes < limit:
        shorter = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(brackets):
            break  # unbalanced: invalid JSON, for the parser to report
        brackets = shorter
        passes += 1
    if not brackets:
        return False
    if passes == limit:
        return True
    return passes * 2 + _depth(brackets, limit) > limit


def _outside_strings(document: bytes) -> bytes:
    """``document`` without its strings (brackets in them do not nest).

    Escaped backslashes go first, then escaped quotes, as the lexer pairs
    them left to right; every quote left then opens or closes a string.
    """
    if b"\\" in document:
        document = document.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(document.split(b'"')[::2])


_CLOSES = {ord("["): ord("]"), ord("{"): ord("}")}


def _depth(brackets: bytes, limit: int) -> int:
    """How deep a parser gets into ``brackets``, counted up to ``limit + 1``.

    The parser stops at the first closing bracket that does not match, and
    so does this count.
    """
    expected: list[int] = []
    deepest = 0
    for byte in brackets:
        closer = _CLOSES.get(byte)
        if closer is not None:
            expected.append(closer)
            deepest = max(deepest, len(expected))
            if deepest > limit:
                break
        elif not expected or expected.pop() != byte:
            break
    return deepest
