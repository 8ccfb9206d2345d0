from __future__ import annotations

from asyncpress.core import cache_keys
from asyncpress.core.errors import Invalid, NotFound
from asyncpress.core.uow import Database
from asyncpress.notifications import service as notifications
from asyncpress.profiles import events, repository
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User


class Profiles:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, username: str, viewer_id: int | None) -> ProfileOut:
        async with self.db.reading() as reader:
            found = await repository.profile(reader, username, viewer_id)
        if found is None:
            raise NotFound("profile")
        return found

    async def set_following(self, viewer: User, username: str, *, follow: bool) -> ProfileOut:
        """Follow or unfollow; doing it twice is the same as doing it once."""
        async with self.db.write() as uow:
            target = await repository.user_by_username(uow.session, username)
            if target is None:
                raise NotFound("profile")
            if target.id == viewer.id:
                raise Invalid("username", "is you; you cannot follow yourself")
            created = False
            if follow:
                created = await repository.follow(uow.session, viewer.id, target.id)
                await notifications.on_follow(
                    uow, actor=viewer.username, actor_id=viewer.id, followee=target
                )
            else:
                await repository.unfollow(uow.session, viewer.id, target.id)
            found = await repository.profile(uow.session, username, viewer.id)
            assert found is not None
            if created:  # following twice is one event
                await events.followed(uow, viewer, target)
            uow.retire(cache_keys.ARTICLE_COUNTS)  # the follower's feed count
            await uow.commit()
        return found
