"""Cache keys that one domain's reads keep and other domains' writes retire.

They live here, below every domain, so a write can name what it makes stale
without importing the package that reads it.
"""

from __future__ import annotations

# The popular-tags list front ends ask for (the default page only).
TAGS = "tags:popular"
# The dashboard figures.
STATS = "stats"
# The generation every cached ``articlesCount`` is kept under: retiring it
# retires them all (asyncpress.articles.counts).
ARTICLE_COUNTS = "articles:count-generation"


def article(slug: str) -> str:
    """An article as an anonymous reader sees it."""
    return f"article:{slug}"
