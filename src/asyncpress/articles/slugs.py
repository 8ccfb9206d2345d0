"""Slugs: derived from the title, ASCII, unique (a collision gets ``-2``, ``-3``…)."""

from __future__ import annotations

import re
import unicodedata

MAX_BASE_LENGTH = 200
_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = _NON_WORD.sub("-", ascii_title.lower()).strip("-")
    slug = slug[:MAX_BASE_LENGTH].rstrip("-")
    return slug or "article"


def first_free(base: str, taken: set[str]) -> str:
    """``base`` if free, else ``base-N`` with the smallest free N ≥ 2."""
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
