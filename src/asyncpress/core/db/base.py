"""The declarative base, its naming convention, and UTC timestamps on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import DateTime, Index, MetaData, Text
from sqlalchemy.dialects.mysql import DATETIME, MEDIUMTEXT
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """An aware UTC datetime from a driver's value (SQLite's carry no zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Unbounded text. MySQL's TEXT holds 65,535 bytes, less than a 100,000-character
# body or an event carrying one: MEDIUMTEXT (16 MB) there.
LongText = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")

# Backends whose timestamp columns keep no zone: UTC is stored as a naive value.
_ZONELESS = frozenset({"sqlite", "mysql", "mariadb"})


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite and MySQL keep no zone themselves).

    On MySQL/MariaDB the column is ``DATETIME(6)``: microseconds kept, as on
    the other backends (a plain DATETIME rounds them away, and keyset pages
    and event order need them). Not ``TIMESTAMP``, which ends in 2038.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(DATETIME(fsp=6))
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name in _ZONELESS else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def only_on(dialect: str, index: Index) -> Index:
    """``index`` on ``dialect``'s databases only (its migration makes it there alone)."""
    index.info["only_on"] = dialect
    return index.ddl_if(dialect=dialect)


def compared_on(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Autogenerate's ``include_object``: leaves out what ``only_on`` keeps from ``dialect``."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        only = obj.info.get("only_on") if type_ == "index" and not reflected else None
        return only is None or only == dialect

    return include
