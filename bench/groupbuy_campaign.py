"""The setup both group-buy benchmarks start from: a community the bot administers, a pickup
point, a product with ample stock and a live team campaign, made through the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot.services import communities, groupbuys, products, settings
from bot.services.products import ProductDraft
from bot.services.shop_settings import update_shop_settings
from bot.services.upsert import insert_for
from models import GroupBuyKind, User

RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True, "can_manage_chat": True}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class Campaign:
    community_id: int
    point_id: int
    product_id: int
    campaign_id: int
    currency: str


async def build_campaign(sessions, *, leader_id: int, user_ids: list[int], chat_id: int, title: str, product: str,
                         price: int, team_price: int, stock: int, size: int, minutes: int,
                         stars_per_unit: int | None = None) -> Campaign:
    """`user_ids` (and the leader) are inserted in one statement; with `stars_per_unit` the shop
    takes Stars."""
    at = utcnow()
    async with sessions() as s:
        conn = await s.connection()
        await conn.execute(insert_for(s, User.__table__).values(
            [{"id": uid, "first_name": f"User{uid}", "can_dm": True, "marketing_opt_out": False, "erased": False,
              "created_at": at, "updated_at": at} for uid in [leader_id, *user_ids]]
        ).on_conflict_do_nothing(index_elements=["id"]))
        await s.commit()
        community = (await communities.on_bot_status(
            s, chat_id=chat_id, title=title, status="administrator", rights=RIGHTS, default_locale="en",
            default_timezone="UTC", now=at)).community
        if stars_per_unit is not None:
            await update_shop_settings(s, community=community, actor_id=leader_id, now=at, stars_enabled=True,
                                       stars_per_unit=stars_per_unit)
        point = await settings.add_pickup_point(s, community_id=community.id, actor_id=leader_id, raw_name="Gate",
                                                now=at)
        item = await products.create(s, community=community, actor_id=leader_id, now=at, draft=ProductDraft(
            title=product, description="", price=price, stock=stock, per_member_limit=None))
        draft = await groupbuys.create(s, community_id=community.id, actor_id=leader_id, now=at, terms=groupbuys.Terms(
            kind=GroupBuyKind.TEAM, product_id=item.id, price=team_price, ends_at=at + timedelta(days=2),
            team_size=size, team_minutes=minutes, open_limit=1, join_limit=1))
        campaign = await groupbuys.publish(s, community_id=community.id, group_buy_id=draft.id, actor_id=leader_id, now=at)
        return Campaign(community.id, point.id, item.id, campaign.id, community.currency)
