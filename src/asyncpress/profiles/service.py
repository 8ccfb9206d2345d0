from __future__ import annotations

from asyncpress.core import cache_keys
from asyncpress.core.db.references import gone_as
from asyncpress.core.errors import Invalid, NotFound
from asyncpress.core.uow import Database
from asyncpress.notifications import service as notifications
from asyncpress.profiles import events, following, repository
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users import repository as users_repository
from asyncpress.users.auth import account_gone
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

    async def set_following(self, viewer_id: int, username: str, *, follow: bool) -> ProfileOut:
        """Follow or unfollow; doing it twice is the same as doing it once.

        The response is the followee as read before the write, which the
        write cannot change but for ``following``.
        """
        if self.db.engine.dialect.name == "postgresql":
            return await self._set_following_at_once(viewer_id, username, follow=follow)
        async with self.db.write() as uow:
            viewer = await users_repository.read(uow.session, viewer_id)
            if viewer is None:
                raise account_gone()
            target = await users_repository.read_by_username(uow.session, username)
            _check(viewer, target)
            assert target is not None
            created = False
            with gone_as(NotFound("profile")):  # deleted since it was read
                if follow:
                    created = await repository.follow(uow.session, viewer.id, target.id)
                    await notifications.on_follow(
                        uow, actor=viewer.username, actor_id=viewer.id, followee=target
                    )
                else:
                    await repository.unfollow(uow.session, viewer.id, target.id)
            if created:  # following twice is one event
                await events.followed(uow, viewer, target)
            uow.retire(cache_keys.ARTICLE_COUNTS)  # the follower's feed count
            await uow.commit()
        return _profile(target, follow)

    async def _set_following_at_once(
        self, viewer_id: int, username: str, *, follow: bool
    ) -> ProfileOut:
        """``set_following`` on PostgreSQL: one read (the followee and the caller),
        then one statement (profiles.following)."""
        async with self.db.write_at_once() as work:
            found = await users_repository.read_by_username_with_actor(
                work.connection, username, viewer_id
            )
            if found is None:
                raise NotFound("profile")
            target, viewer = found
            if viewer is None:
                raise account_gone()
            _check(viewer, target)
            with gone_as(NotFound("profile")):  # deleted since it was read
                await following.write(work, viewer, target, follow=follow)
            work.retire(cache_keys.ARTICLE_COUNTS)  # the follower's feed count
            await work.commit()
        return _profile(target, follow)


def _check(viewer: User, target: User | None) -> None:
    if target is None:
        raise NotFound("profile")
    if target.id == viewer.id:
        raise Invalid("username", "is you; you cannot follow yourself")


def _profile(user: User, following: bool) -> ProfileOut:
    return ProfileOut.of(user, following=following)
