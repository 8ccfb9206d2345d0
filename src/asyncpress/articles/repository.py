"""Article queries.

A page of articles is one statement whatever its size: the rows, each with
its author, ``following``, ``favorited`` and its tags folded in, and the
total count as an uncorrelated subquery (evaluated once). Only a page past
the end (no rows, offset > 0) needs a second statement for the count.

The statements of the hot reads (a page, one article) are built once per
dialect and filter shape, with bound parameters: building a select and its
cache key on every request cost more than PostgreSQL took to run it
(docs/benchmarks.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from asyncpress.articles.models import Article, Favorite, RetiredSlug
from asyncpress.core.db.base import utc
from asyncpress.core.db.bulk import insert_ignoring_conflicts, table_of
from asyncpress.core.db.engine import Reader, dialect_of
from asyncpress.core.db.references import duplicate_key
from asyncpress.fast.rows import Prepared
from asyncpress.profiles.models import Follow
from asyncpress.profiles.repository import following_expr, profile_from_row
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.tags import uses as tag_uses
from asyncpress.tags.models import Tag, article_tags
from asyncpress.users import repository as users_repository
from asyncpress.users.models import User

# The filters a page can have, in the order their shapes are keyed.
FILTER_KINDS = ("tag", "author", "favorited", "feed_of", "slug")


@dataclass(frozen=True, slots=True)
class Filters:
    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    feed_of: int | None = None
    slug: str | None = None

    def values(self) -> dict[str, Any]:
        """The filters in use, by kind."""
        return {k: getattr(self, k) for k in FILTER_KINDS if getattr(self, k) is not None}

    def where(self) -> list[ColumnElement[bool]]:
        """The filters in use as clauses with their values."""
        return _clauses(self.values())


def _clauses(values: dict[str, Any]) -> list[ColumnElement[bool]]:
    """WHERE clauses for ``values`` (kind → value or a bound parameter)."""
    clauses: list[ColumnElement[bool]] = []
    if "tag" in values:
        clauses.append(
            Article.id.in_(
                select(article_tags.c.article_id)
                .join(Tag, Tag.id == article_tags.c.tag_id)
                .where(Tag.name == values["tag"])
            )
        )
    if "author" in values:
        author = aliased(User)
        clauses.append(
            Article.author_id.in_(select(author.id).where(author.username == values["author"]))
        )
    if "favorited" in values:
        fan = aliased(User)
        clauses.append(
            Article.id.in_(
                select(Favorite.article_id)
                .join(fan, fan.id == Favorite.user_id)
                .where(fan.username == values["favorited"])
            )
        )
    if "feed_of" in values:
        clauses.append(
            Article.author_id.in_(
                select(Follow.followee_id).where(Follow.follower_id == values["feed_of"])
            )
        )
    if "slug" in values:
        clauses.append(Article.slug == values["slug"])
    return clauses


@dataclass(slots=True)
class ArticleRecord:
    id: int
    slug: str
    title: str
    description: str
    body: str | None
    tag_list: list[str]
    created_at: datetime
    updated_at: datetime
    favorited: bool
    favorites_count: int
    author: ProfileOut


def _tag_list(dialect: str) -> ColumnElement[Any]:
    """The article's tag names in the row: an array on PostgreSQL, JSON elsewhere."""
    names = (
        select(Tag.name)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .where(article_tags.c.article_id == Article.id)
    )
    if dialect == "postgresql":
        return func.array(names.order_by(Tag.name).scalar_subquery(), type_=ARRAY(String))
    if dialect == "mysql":
        # From the article's links (its primary key's prefix) to their tags,
        # in that order: MariaDB otherwise reads every tag per article.
        by_links = (
            select(func.json_arrayagg(Tag.name))
            .select_from(article_tags)
            .join(Tag, Tag.id == article_tags.c.tag_id)
            .where(article_tags.c.article_id == Article.id)
            .prefix_with("STRAIGHT_JOIN")
        )
        return by_links.scalar_subquery()
    return names.with_only_columns(func.json_group_array(Tag.name)).scalar_subquery()


def _names(value: Any) -> list[str]:
    if value is None:  # MySQL's JSON_ARRAYAGG over no tags
        return []
    if isinstance(value, str | bytes):  # a JSON array, in no particular order
        return sorted(json.loads(value))
    return list(value)


def _favorited_expr(viewer: Any) -> ColumnElement[bool]:
    """Whether the viewer (an id, a bound parameter or None) favorited the article."""
    if viewer is None:
        return false()
    return exists().where(Favorite.user_id == viewer, Favorite.article_id == Article.id)


def _select(
    dialect: str,
    viewer: Any,
    where: Sequence[ColumnElement[bool]],
    *,
    with_body: bool,
    total: Select[Any] | None = None,
    articles_first: bool = False,
) -> Select[Any]:
    """The page statement: rows newest first, with everything a response shows.

    ``total``, a count statement, is folded in as a column when given.
    ``articles_first``: no filter narrows the articles but their own date
    (the unfiltered list, the export); see below.
    """
    columns: list[Any] = [
        Article.id,
        Article.slug,
        Article.title,
        Article.description,
        Article.created_at,
        Article.updated_at,
        Article.favorites_count,
        User.username,
        User.bio,
        User.image,
        following_expr(viewer, Article.author_id).label("following"),
        _favorited_expr(viewer).label("favorited"),
        _tag_list(dialect).label("tag_list"),
        (Article.body if with_body else null()).label("body"),
    ]
    if total is not None:
        columns.append(total.scalar_subquery().label("total"))
    stmt = (
        select(*columns)
        .join(User, User.id == Article.author_id)
        .where(*where)
        .order_by(Article.created_at.desc(), Article.id.desc())
    )
    if dialect == "mysql" and articles_first:
        # Articles first, in the (created_at, id) index's order, so that the
        # LIMIT stops the scan and the tag subquery runs for the page's rows
        # only. MariaDB's own choice (the few users first) sorted every
        # article, running the subquery for each: 3.5 s for a 500-row page
        # of 50,000 articles, 158 ms for a 20-row page of 20,000 (5 ms so).
        # Not with a filter: a tag's, an author's or a feed's rows are found
        # from their own index (a tag's page took 68 ms so, 1.7 ms without).
        stmt = stmt.prefix_with("STRAIGHT_JOIN")
    return stmt


def _count(values: dict[str, Any]) -> Select[Any]:
    """The number of articles matching ``values``.

    A tag or a favoriter alone is counted from its link table's index: each
    link names one existing article once (primary key, ON DELETE CASCADE),
    so no article row needs reading (docs/benchmarks.md, "What the profiles showed").
    """
    if values.keys() == {"tag"}:
        return (
            select(func.count())
            .select_from(article_tags)
            .join(Tag, Tag.id == article_tags.c.tag_id)
            .where(Tag.name == values["tag"])
        )
    if values.keys() == {"favorited"}:
        fan = aliased(User)
        return (
            select(func.count())
            .select_from(Favorite)
            .join(fan, fan.id == Favorite.user_id)
            .where(fan.username == values["favorited"])
        )
    return select(func.count()).select_from(Article).where(*_clauses(values))


@cache
def _prepared(
    dialect: str, kinds: tuple[str, ...], *, with_body: bool, counted: bool = False
) -> Prepared:
    """One statement per dialect and filter shape, every value a bound parameter.

    ``counted`` folds in the count of every match.
    """
    bound = {k: bindparam(k, type_=Integer if k == "feed_of" else String) for k in kinds}
    viewer = bindparam("viewer", type_=Integer)
    total = _count(bound) if counted else None
    if kinds == ("tag",):
        # Newest first straight from the (tag_id, article_created_at, article_id)
        # index: the generic IN form walks every article backwards until a
        # page has the tag, which for a rare tag is most of the table.
        tag_id = select(Tag.id).where(Tag.name == bound["tag"]).scalar_subquery()
        stmt = (
            _select(
                dialect, viewer, [article_tags.c.tag_id == tag_id], with_body=with_body, total=total
            )
            .join(article_tags, article_tags.c.article_id == Article.id)
            .order_by(None)
            .order_by(article_tags.c.article_created_at.desc(), article_tags.c.article_id.desc())
        )
    else:
        stmt = _select(
            dialect,
            viewer,
            _clauses(bound),
            with_body=with_body,
            total=total,
            articles_first=not kinds,
        )
    return Prepared(
        stmt.limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer))
    )


def _record(row: Any, with_body: bool) -> ArticleRecord:
    """An article from a row read by column name (a mapping or an asyncpg record)."""
    return ArticleRecord(
        id=row["id"],
        slug=row["slug"],
        title=row["title"],
        description=row["description"],
        body=row["body"] if with_body else None,
        tag_list=_names(row["tag_list"]),
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        favorited=bool(row["favorited"]),
        favorites_count=row["favorites_count"],
        author=profile_from_row(row),
    )


async def page(
    session: AsyncSession,
    filters: Filters,
    viewer_id: int | None,
    limit: int,
    offset: int,
    total: int | None = None,
) -> tuple[list[ArticleRecord], int]:
    """A page of the list (no bodies) and the count of every match.

    The count is read in the same statement unless ``total`` is already known.
    """
    values = filters.values()
    stmt = _prepared(dialect_of(session), tuple(values), with_body=False, counted=total is None)
    params = {**values, "viewer": viewer_id, "limit": limit, "offset": offset}
    rows = await stmt.rows(session, params)
    records = [_record(row, False) for row in rows]
    if total is not None:
        return records, total
    if rows:
        return records, int(rows[0]["total"])
    return [], 0 if offset == 0 else await count(session, filters)


async def count(session: AsyncSession, filters: Filters) -> int:
    return int((await session.execute(_count(filters.values()))).scalar_one())


async def records(
    session: AsyncSession,
    *,
    viewer_id: int | None,
    where: Sequence[ColumnElement[bool]],
    limit: int | None = None,
    articles_first: bool = False,
) -> list[ArticleRecord]:
    """Articles with bodies matching ``where`` (any clauses), newest first.

    ``articles_first``: ``where`` narrows the articles by their own date only.
    """
    stmt = _select(
        dialect_of(session), viewer_id, where, with_body=True, articles_first=articles_first
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_record(row, True) for row in (await session.execute(stmt)).mappings().all()]


_CURRENT_SLUG = Prepared(
    select(Article.slug)
    .join(RetiredSlug, RetiredSlug.article_id == Article.id)
    .where(RetiredSlug.slug == bindparam("slug", type_=String))
)


async def current_slug(reader: Reader, slug: str) -> str | None:
    """The slug now in use by the article that once had ``slug``, if any."""
    rows = await _CURRENT_SLUG.rows(reader, {"slug": slug})
    return str(rows[0]["slug"]) if rows else None


async def retire_slug(session: AsyncSession, article_id: int, slug: str) -> None:
    await session.execute(
        insert_ignoring_conflicts(session, RetiredSlug).values(slug=slug, article_id=article_id)
    )


async def record_by_slug(reader: Reader, slug: str, viewer_id: int | None) -> ArticleRecord | None:
    stmt = _prepared(dialect_of(reader), ("slug",), with_body=True)
    rows = await stmt.rows(reader, {"slug": slug, "viewer": viewer_id, "limit": 1, "offset": 0})
    if rows:
        return _record(rows[0], True)
    renamed = await current_slug(reader, slug)
    return None if renamed is None else await record_by_slug(reader, renamed, viewer_id)


@cache
def _with_actor(dialect: str) -> Prepared:
    """The article by its slug (``record_by_slug``), and the viewer's profile beside it."""
    article = _prepared(dialect, ("slug",), with_body=True).statement
    assert isinstance(article, Select)
    return Prepared(
        article.add_columns(*users_repository.actor_columns(bindparam("viewer", type_=Integer)))
    )


async def record_and_actor(
    reader: Reader, slug: str, actor_id: int
) -> tuple[ArticleRecord, User | None] | None:
    """The article (``slug`` may be a retired one) and the actor, in one statement.

    The actor is a transient ``User`` holding id, username, bio and image;
    None when the account no longer exists.
    """
    params = {"slug": slug, "viewer": actor_id, "limit": 1, "offset": 0}
    rows = await _with_actor(dialect_of(reader)).rows(reader, params)
    if not rows:
        renamed = await current_slug(reader, slug)
        return None if renamed is None else await record_and_actor(reader, renamed, actor_id)
    return _record(rows[0], True), users_repository.actor_from(rows[0], actor_id)


async def by_slug(session: AsyncSession, slug: str, *, for_update: bool = False) -> Article | None:
    """The article (``slug`` may be a retired one).

    ``for_update`` locks its row until the unit of work ends (PostgreSQL;
    SQLite's write transactions already exclude each other): an edit or a
    delete then waits for one in flight and finds what it left. ``FOR NO
    KEY UPDATE``, the lock an UPDATE takes anyway, so favorites and
    comments (whose foreign keys take a key-share lock) do not wait on it.
    """
    stmt = select(Article).where(Article.slug == slug)
    if for_update:
        stmt = stmt.with_for_update(key_share=True)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        return found
    renamed = await current_slug(session, slug)
    return None if renamed is None else await by_slug(session, renamed, for_update=for_update)


@dataclass(frozen=True, slots=True)
class Target:
    """An article as a write on it (a favorite, a comment) needs it."""

    id: int
    slug: str
    title: str


def _with_author() -> Prepared:
    articles, users = table_of(Article), table_of(User)
    return Prepared(
        select(
            articles.c.id.label("article_id"),
            articles.c.slug.label("article_slug"),
            articles.c.title.label("article_title"),
            *users.c,
        )
        .join_from(articles, users, users.c.id == articles.c.author_id)
        .where(articles.c.slug == bindparam("slug", type_=String))
    )


_WITH_AUTHOR = _with_author()
_WITH_AUTHOR_AND_ACTOR = Prepared(
    _with_author().statement.add_columns(  # type: ignore[union-attr]
        *users_repository.actor_columns(bindparam("actor_id", type_=Integer))
    )
)


async def with_author(session: Reader, slug: str) -> tuple[Target, User] | None:
    """The article and its author (detached), in one driver-direct statement."""
    rows = await _WITH_AUTHOR.rows(session, {"slug": slug})
    if rows:
        row = rows[0]
        target = Target(row["article_id"], row["article_slug"], row["article_title"])
        return target, users_repository.detached(row)
    renamed = await current_slug(session, slug)
    return None if renamed is None else await with_author(session, renamed)


async def with_author_and_actor(
    reader: Reader, slug: str, actor_id: int
) -> tuple[Target, User, User | None] | None:
    """``with_author``, and the actor (``users.repository.actor_from``) beside them, at once."""
    rows = await _WITH_AUTHOR_AND_ACTOR.rows(reader, {"slug": slug, "actor_id": actor_id})
    if rows:
        row = rows[0]
        target = Target(row["article_id"], row["article_slug"], row["article_title"])
        return target, users_repository.detached(row), users_repository.actor_from(row, actor_id)
    renamed = await current_slug(reader, slug)
    return None if renamed is None else await with_author_and_actor(reader, renamed, actor_id)


_ID_BY_SLUG = Prepared(select(Article.id).where(Article.slug == bindparam("slug", type_=String)))


async def id_by_slug(reader: Reader, slug: str) -> int | None:
    rows = await _ID_BY_SLUG.rows(reader, {"slug": slug})
    if rows:
        return int(rows[0]["id"])
    renamed = await current_slug(reader, slug)
    return None if renamed is None else await id_by_slug(reader, renamed)


def _like(dialect: str, column: Any, values: dict[str, Any] | None) -> ColumnElement[bool]:
    """``column`` is ``base`` or ``base-…`` (``_slug_params``), asked so that an index serves it.

    Compared byte by byte, ``base-…`` is the range from ``base-`` up to
    ``base.`` (``.`` follows ``-``). SQLite's slugs compare so (its ``LIKE``
    ignores case and never uses an index). PostgreSQL's ``text_pattern_ops``
    index (migration 0011) serves that range through its byte-wise operators
    ``~>=~`` and ``~<~``, in a plan made once for any values (the direct
    pool's, ``fast.direct``); a ``LIKE $1`` there would read the whole index,
    its pattern unknown when planned. MySQL serves the ``LIKE`` from its
    unique index. Slugs hold no LIKE wildcards: slugify turns "%" and "_"
    into "-". ``values`` binds the parameters now (a statement to show);
    without, the caller gives them at each run.
    """
    low, high = _param("low", values), _param("high", values)
    if dialect == "sqlite":
        prefixed = (column >= low) & (column < high)
    elif dialect == "postgresql":
        at_least = column.op("~>=~", is_comparison=True)(low)
        below = column.op("~<~", is_comparison=True)(high)
        prefixed = at_least & below
    else:
        prefixed = column.like(_param("pattern", values))
    clause: ColumnElement[bool] = (column == _param("base", values)) | prefixed
    return clause


def _param(name: str, values: dict[str, Any] | None, type_: Any = String) -> Any:
    """A parameter bound now from ``values``, or (None) given at each run."""
    if values is None:
        return bindparam(name, type_=type_)
    return bindparam(name, values[name], type_=type_)


def _slug_params(base: str) -> dict[str, str]:
    return {"base": base, "pattern": f"{base}-%", "low": f"{base}-", "high": f"{base}."}


def _slugs_like_bound(dialect: str, excluding: bool, values: dict[str, Any] | None) -> Any:
    current = select(Article.slug).where(_like(dialect, Article.slug, values))
    retired = select(RetiredSlug.slug).where(_like(dialect, RetiredSlug.slug, values))
    if excluding:
        exclude = _param("exclude_id", values, Integer)
        current = current.where(Article.id != exclude)
        retired = retired.where(RetiredSlug.article_id != exclude)
    return current.union_all(retired)


@cache
def _slugs_like(dialect: str, excluding: bool) -> Any:
    return _slugs_like_bound(dialect, excluding, None)


@cache
def _prepared_slugs_like(dialect: str, excluding: bool) -> Prepared:
    return Prepared(select(_slugs_like(dialect, excluding).subquery().c.slug))


def slugs_like_statement(dialect: str, base: str, exclude_id: int | None = None) -> Any:
    """The slugs, in use or retired, equal to ``base`` or of the form ``base-…``."""
    values = {**_slug_params(base), "exclude_id": exclude_id}
    return _slugs_like_bound(dialect, exclude_id is not None, values)


async def slugs_like(reader: Reader, base: str, exclude_id: int | None = None) -> set[str]:
    """Slugs, in use or retired, equal to ``base`` or of the form ``base-…``.

    ``exclude_id``'s own slugs do not count: an article may take back its old one.
    """
    prepared = _prepared_slugs_like(dialect_of(reader), exclude_id is not None)
    rows = await prepared.rows(reader, {**_slug_params(base), "exclude_id": exclude_id})
    return {row["slug"] for row in rows}


@cache
def _slugs_and_actor() -> Prepared:
    """PostgreSQL: ``slugs_like`` as one array, the actor's profile beside it."""
    taken = func.array(_slugs_like("postgresql", False).scalar_subquery(), type_=ARRAY(String))
    return Prepared(
        select(taken.label("taken"), *users_repository.actor_columns(bindparam("actor", Integer)))
    )


async def slugs_and_actor(reader: Reader, base: str, actor_id: int) -> tuple[set[str], User | None]:
    """``slugs_like(base)`` and the actor (``users.repository.actor_from``) at once (PostgreSQL)."""
    rows = await _slugs_and_actor().rows(reader, {**_slug_params(base), "actor": actor_id})
    return set(rows[0]["taken"]), users_repository.actor_from(rows[0], actor_id)


async def set_tags(
    session: AsyncSession,
    article_id: int,
    created_at: datetime,
    names: Sequence[str],
    *,
    new_article: bool = False,
) -> Counter[int]:
    """Link exactly these tags; a ``new_article`` has none to unlink first.

    Returns how each tag's use count must change, for the caller to apply
    with ``tag_uses.add`` as late as it can, just before its event and its
    commit: that UPDATE locks the rows of tags every other write of them
    needs, until the commit.
    """
    removed = [] if new_article else await _unlink_tags(session, article_id)
    mysql = dialect_of(session) == "mysql"
    if mysql:
        await _lock_by_name(session, [*names, *await _names_of(session, removed)])
    ids: Sequence[int] = []
    if names:
        ids = await _tag_ids(session, names)
        await session.execute(
            article_tags.insert(),
            [
                {"article_id": article_id, "tag_id": tag_id, "article_created_at": created_at}
                for tag_id in ids
            ],
        )
    uses = tag_uses.changes(removed, ids)
    if mysql:  # its rows are locked already (_lock_by_name)
        await tag_uses.add(session, uses)
        return Counter()
    return uses


async def _lock_by_name(session: AsyncSession, names: Sequence[str]) -> None:
    """MySQL/MariaDB: make and lock every tag a write will count, in one upsert in name order.

    InnoDB: adding a tag, new or not, leaves a lock on its key that the
    count's UPDATE must raise to an exclusive one; two creates of one tag
    deadlock when both wait to do that. An upsert takes the exclusive lock
    at once. Every writer of tags (creates, edits, deletes, imports) takes
    them all in one statement, in the same order (by name), before it
    changes a count: an edit that dropped one tag and locked it only when
    its count moved (by id) deadlocked with creates of the same tags.
    """
    if names:
        await session.execute(
            insert_ignoring_conflicts(session, Tag), [{"name": n} for n in sorted(set(names))]
        )


async def _names_of(session: AsyncSession, tag_ids: Sequence[int]) -> list[str]:
    if not tag_ids:
        return []
    return list((await session.execute(select(Tag.name).where(Tag.id.in_(tag_ids)))).scalars())


async def _tag_ids(session: AsyncSession, names: Sequence[str]) -> list[int]:
    """The ids of these tags, made where missing (on MySQL, ``_lock_by_name`` made them).

    Known tags are read, not upserted: an insert that meets an existing tag
    (ON CONFLICT DO NOTHING) waits for every open transaction that changed
    its row, and every write that links a popular tag changes its use count.
    """
    wanted = select(Tag.name, Tag.id)
    found: dict[str, int] = {}
    found.update((await session.execute(wanted.where(Tag.name.in_(names)))).all())
    missing = sorted(set(names) - found.keys())
    if missing:
        await session.execute(
            insert_ignoring_conflicts(session, Tag), [{"name": name} for name in missing]
        )
        made = await session.execute(wanted.where(Tag.name.in_(missing)))
        found.update(made.all())
    return sorted(found.values())


async def _unlink_tags(session: AsyncSession, article_id: int) -> list[int]:
    """Remove the article's tag links; the ids of the tags it had."""
    result = await session.execute(
        delete(article_tags)
        .where(article_tags.c.article_id == article_id)
        .returning(article_tags.c.tag_id)
    )
    return list(result.scalars().all())


# Favorites are written on the table, not the mapped class: the ORM's bulk
# paths cost more CPU than the statements' round trips.
_FAVORITES = table_of(Favorite)


@dataclass(frozen=True, slots=True)
class FavoriteMoved:
    """A favorite or unfavorite that changed something: the new count, and whom it concerns."""

    favorites_count: int
    owner: User  # the article's author, detached


async def move_favorite(
    session: AsyncSession, user_id: int, article_id: int, *, favorite: bool
) -> FavoriteMoved | None:
    """Favorite or unfavorite; None when the row was already so (nothing changed).

    SQLite and MySQL; PostgreSQL does it in one statement (articles.favorites).
    """
    if dialect_of(session) == "mysql":
        return await _move_favorite_mysql(session, user_id, article_id, favorite=favorite)
    table = _FAVORITES
    if favorite:
        written = insert_ignoring_conflicts(session, table).values(
            user_id=user_id, article_id=article_id
        )
    else:
        written = delete(table).where(table.c.user_id == user_id, table.c.article_id == article_id)
    if not (await session.execute(written)).rowcount:  # type: ignore[attr-defined]
        return None
    articles = table_of(Article)
    count, author_id = (
        await session.execute(
            _count_moved(favorite).returning(articles.c.favorites_count, articles.c.author_id),
            {"article_id": article_id},
        )
    ).one()
    return await _moved(session, count, author_id)


def _count_moved(favorite: bool, *, undo: bool = False) -> Any:
    articles = table_of(Article)
    by = (1 if favorite else -1) * (-1 if undo else 1)
    return (
        update(articles)
        .where(articles.c.id == bindparam("article_id", type_=Integer))
        .values(favorites_count=articles.c.favorites_count + by)
    )


async def _moved(session: AsyncSession, count: int, author_id: int) -> FavoriteMoved:
    owner = await users_repository.read(session, author_id)
    assert owner is not None  # the article's author: the row is held by the FK
    return FavoriteMoved(count, owner)


async def _move_favorite_mysql(
    session: AsyncSession, user_id: int, article_id: int, *, favorite: bool
) -> FavoriteMoved | None:
    """MySQL's favorite and unfavorite: the article's row lock first.

    InnoDB's foreign-key check on the favorite row takes a shared lock on the
    article, which the count's UPDATE then has to upgrade: two concurrent
    favorites would each hold the shared lock and deadlock on the upgrade
    (PostgreSQL's key-share lock does not conflict with the update). Moving
    the count first takes the exclusive lock before the check, so writers of
    one article queue instead; a write that changed no row undoes the count
    (a repeat, the rare path). MySQL has no UPDATE … RETURNING: the count is
    read back under the lock.
    """
    ids = {"article_id": article_id}
    await session.execute(_count_moved(favorite), ids)
    table = _FAVORITES
    changed = True
    if favorite:
        # A plain INSERT: MySQL's ignoring insert counts a duplicate as a row
        # (insert_ignoring_conflicts); a duplicate-key error undoes this
        # statement only, and the transaction goes on.
        try:
            await session.execute(insert(table).values(user_id=user_id, article_id=article_id))
        except IntegrityError as exc:
            if not duplicate_key(exc):
                raise
            changed = False
    else:
        gone = delete(table).where(table.c.user_id == user_id, table.c.article_id == article_id)
        changed = bool((await session.execute(gone)).rowcount)  # type: ignore[attr-defined]
    if not changed:
        await session.execute(_count_moved(favorite, undo=True), ids)
        return None
    articles = table_of(Article)
    count, author_id = (
        await session.execute(
            select(articles.c.favorites_count, articles.c.author_id).where(
                articles.c.id == article_id
            )
        )
    ).one()
    return await _moved(session, count, author_id)


async def delete_article(session: AsyncSession, article_id: int) -> None:
    # Tag links are removed here rather than by the cascade: their tags' use
    # counts go down with them.
    removed = await _unlink_tags(session, article_id)
    if dialect_of(session) == "mysql":
        await _lock_by_name(session, await _names_of(session, removed))
    await session.execute(delete(Article).where(Article.id == article_id))
    # Last: the tags' rows stay locked until the commit (set_tags).
    await tag_uses.add(session, tag_uses.changes(removed, []))
