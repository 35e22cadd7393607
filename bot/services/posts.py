"""Product cards in the group: posting now or at a community-local time, and keeping cards current.

A post is claimed (scheduled → posting) by a conditional UPDATE before it is sent, so two workers,
a restart or a late job never send it twice. A post found after its grace period is reported as
missed instead of surprising the group hours late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit
from bot.services.errors import DomainError
from bot.services.shop_settings import shop_settings
from models import Community
from models.shop import PostStatus, Product, ProductPost, ProductStatus

# A post still "posting" this long after it was due was interrupted mid-send (crash): it is not
# retried, because it may already be in the group.
STUCK_AFTER = timedelta(minutes=10)


def parse_local_time(raw: str, *, tz: str, now: datetime) -> datetime:
    """"18:30" (today, or tomorrow if past) or "2026-11-22 18:30" in the community's zone → UTC."""
    zone = ZoneInfo(tz)
    text = " ".join(raw.strip().replace("T", " ").split())
    local_now = now.astimezone(zone)
    try:
        if len(text) <= 5:
            at = time.fromisoformat(text.zfill(5))
            day: date = local_now.date()
            candidate = datetime.combine(day, at, zone)
            if candidate <= local_now:
                candidate = datetime.combine(day + timedelta(days=1), at, zone)
        else:
            candidate = datetime.fromisoformat(text).replace(tzinfo=zone)
    except ValueError:
        raise DomainError("post_time_format", value=raw.strip()[:32]) from None
    when = candidate.astimezone(timezone.utc)
    if when <= now:
        raise DomainError("post_time_past")
    if when - now > timedelta(days=60):
        raise DomainError("post_time_far")
    return when


async def schedule(session: AsyncSession, *, community: Community, product: Product, actor_id: int,
                   due_at: datetime, now: datetime) -> ProductPost:
    """A post due at `due_at` (now for "post now"), and commit. The scheduler sends it."""
    if product.community_id != community.id:
        raise DomainError("product_unknown")
    if product.status != ProductStatus.ACTIVE:
        raise DomainError("product_paused" if product.status == ProductStatus.PAUSED else "product_archived",
                          number=product.number)
    if not community.active:
        raise DomainError("community_inactive")
    post = ProductPost(community_id=community.id, product_id=product.id, due_at=due_at, created_by=actor_id,
                       grace_minutes=shop_settings(community).post_grace_minutes, created_at=now)
    session.add(post)
    await session.flush()
    audit.record(session, community_id=community.id, actor_id=actor_id, action="post.schedule",
                 details={"id": post.id, "product": product.number, "due_at": due_at.isoformat()}, now=now)
    await session.commit()
    return post


@dataclass(frozen=True, slots=True)
class Claim:
    post: ProductPost
    product: Product
    community: Community
    missed: bool  # past the grace period: report, do not send


async def claim_due(session: AsyncSession, *, now: datetime, limit: int = 50, post_id: int | None = None) -> list[Claim]:
    """Take every post that is due (only `post_id`, for "post now"); each is claimed exactly once,
    and commit."""
    # Interrupted sends from a crash: never retried (they may be in the group already). Swept
    # before claiming, so a late post claimed below is not taken for an interrupted one.
    await session.execute(
        update(ProductPost).where(ProductPost.status == PostStatus.POSTING, col(ProductPost.due_at) <= now - STUCK_AFTER)
        .values(status=PostStatus.FAILED)
    )
    query = select(ProductPost).where(ProductPost.status == PostStatus.SCHEDULED, col(ProductPost.due_at) <= now)
    if post_id is not None:
        query = query.where(ProductPost.id == post_id)
    due = list(await session.exec(query.order_by(ProductPost.due_at, ProductPost.id).limit(limit)))
    claims = []
    for post in due:
        missed = now - post.due_at > timedelta(minutes=post.grace_minutes)
        result = await session.execute(
            update(ProductPost).where(ProductPost.id == post.id, ProductPost.status == PostStatus.SCHEDULED)
            .values(status=PostStatus.MISSED if missed else PostStatus.POSTING)
        )
        if result.rowcount == 1:
            await session.refresh(post)
            product = await session.get(Product, post.product_id)
            community = await session.get(Community, post.community_id)
            claims.append(Claim(post, product, community, missed))
    await session.commit()
    return claims


async def mark_posted(session: AsyncSession, *, post: ProductPost, chat_id: int, message_id: int, with_photo: bool,
                      rendered: str, now: datetime) -> None:
    await session.execute(
        update(ProductPost).where(ProductPost.id == post.id)
        .values(status=PostStatus.POSTED, chat_id=chat_id, message_id=message_id, with_photo=with_photo,
                rendered=rendered, posted_at=now, refresh_due=False)
    )
    await session.commit()


async def mark_failed(session: AsyncSession, *, post: ProductPost) -> None:
    await session.execute(update(ProductPost).where(ProductPost.id == post.id).values(status=PostStatus.FAILED))
    await session.commit()


async def cancel(session: AsyncSession, *, community_id: int, post_id: int, actor_id: int, now: datetime) -> None:
    result = await session.execute(
        update(ProductPost).where(ProductPost.id == post_id, ProductPost.community_id == community_id,
                                  ProductPost.status == PostStatus.SCHEDULED).values(status=PostStatus.CANCELLED)
    )
    if result.rowcount != 1:
        raise DomainError("post_not_scheduled")
    audit.record(session, community_id=community_id, actor_id=actor_id, action="post.cancel", details={"id": post_id}, now=now)
    await session.commit()


async def upcoming(session: AsyncSession, *, community_id: int, product_id: int | None = None,
                   missed_since: datetime | None = None) -> list[ProductPost]:
    """Scheduled posts, and missed ones (only those due after `missed_since`, when given)."""
    shown = (ProductPost.status == PostStatus.SCHEDULED) | (ProductPost.status == PostStatus.MISSED)
    if missed_since is not None:
        shown = (ProductPost.status == PostStatus.SCHEDULED) | (
            (ProductPost.status == PostStatus.MISSED) & (col(ProductPost.due_at) >= missed_since))
    query = select(ProductPost).where(ProductPost.community_id == community_id, shown)
    if product_id is not None:
        query = query.where(ProductPost.product_id == product_id)
    return list(await session.exec(query.order_by(ProductPost.due_at, ProductPost.id)))


async def claim_stale_cards(session: AsyncSession, *, limit: int = 100) -> list[tuple[ProductPost, Product, Community]]:
    """Posted cards whose product changed; each is claimed once (refresh_due cleared), and commit."""
    stale = list(await session.exec(
        select(ProductPost).where(col(ProductPost.refresh_due), ProductPost.status == PostStatus.POSTED)
        .order_by(ProductPost.id).limit(limit)
    ))
    claimed = []
    for post in stale:
        result = await session.execute(
            update(ProductPost).where(ProductPost.id == post.id, col(ProductPost.refresh_due)).values(refresh_due=False)
        )
        if result.rowcount == 1:
            claimed.append((post, await session.get(Product, post.product_id), await session.get(Community, post.community_id)))
    await session.commit()
    return claimed


async def set_rendered(session: AsyncSession, *, post_id: int, rendered: str) -> None:
    await session.execute(update(ProductPost).where(ProductPost.id == post_id).values(rendered=rendered))
    await session.commit()


async def mark_stale(session: AsyncSession, *, post_id: int) -> None:
    """An edit of this card did not get through (Telegram unreachable): the updater tries again."""
    await session.execute(update(ProductPost).where(ProductPost.id == post_id, ProductPost.status == PostStatus.POSTED)
                          .values(refresh_due=True))
    await session.commit()


async def find_posted(session: AsyncSession, *, chat_id: int, message_id: int) -> ProductPost | None:
    return (await session.exec(select(ProductPost).where(ProductPost.chat_id == chat_id,
                                                          ProductPost.message_id == message_id))).first()
