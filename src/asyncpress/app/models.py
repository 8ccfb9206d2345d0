"""Every domain's models, imported once so that one registry serves Alembic."""

from asyncpress.articles.models import Article, Favorite
from asyncpress.comments.models import Comment
from asyncpress.core.db.base import Base
from asyncpress.events.models import Event, EventOrder, EventTicket
from asyncpress.notifications.models import OutboxMessage
from asyncpress.previews.models import LinkPreview
from asyncpress.profiles.models import Follow
from asyncpress.tags.models import Tag, article_tags
from asyncpress.users.models import User

__all__ = [
    "Article",
    "Base",
    "Comment",
    "Event",
    "EventOrder",
    "EventTicket",
    "Favorite",
    "Follow",
    "LinkPreview",
    "OutboxMessage",
    "Tag",
    "User",
    "article_tags",
]
