"""What a group-buy's card in the group and the members' /groupbuy lists read, and the card's
refresh bookkeeping (claimed once per change, so edits coalesce).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import groupbuy_join, groupbuys, members
from bot.services.errors import DomainError
from bot.services.group_seats import SEATED
from bot.services.groupbuy_join import JoinMode, JoinRef
from models import Community, User
from models.groupbuy import GroupBuy, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.shop import Order, Product

# Open teams a card lists (with a Join button each): the closest to full.
CARD_TEAMS = 6
# Teams that filled, shown on the card as done (the newest).
CARD_FILLED = 3


@dataclass(frozen=True, slots=True)
class CardTeam:
    id: int
    number: int
    opener_name: str
    seats: int
    size: int
    deadline_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class Board:
    campaign: GroupBuy
    product: Product
    community: Community
    teams: list[CardTeam] = field(default_factory=list)  # open, the closest to full first
    open_count: int = 0
    filled: list[CardTeam] = field(default_factory=list)  # succeeded, newest first
    filled_count: int = 0
    participants: int = 0  # members holding a seat or units
    units: int = 0


async def _openers(session: AsyncSession, user_ids: set[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    return {user.id: user for user in await session.exec(select(User).where(col(User.id).in_(user_ids)))}


def _card_team(team: GroupBuyTeam, openers: dict[int, User]) -> CardTeam:
    opener = openers.get(team.opener_id)
    # A team opened before its opener erased their profile stays nameless, even once they are back.
    name = "" if opener is None or opener.hidden_at(team.opened_at) else opener.first_name
    return CardTeam(team.id, team.number, name, team.seats, team.size, team.deadline_at, team.status)


async def board(session: AsyncSession, *, group_buy_id: int, now: datetime, teams: int = CARD_TEAMS) -> Board | None:
    """A campaign as its card shows it; None for one that does not exist."""
    campaign = await session.get(GroupBuy, group_buy_id, populate_existing=True)
    if campaign is None:
        return None
    product = await session.get(Product, campaign.product_id)
    community = await session.get(Community, campaign.community_id)
    open_teams = await groupbuys.open_teams(session, group_buy_id=group_buy_id, now=now)
    filled = list(await session.exec(
        select(GroupBuyTeam).where(GroupBuyTeam.group_buy_id == group_buy_id, GroupBuyTeam.status == TeamStatus.SUCCEEDED)
        .order_by(col(GroupBuyTeam.closed_at).desc(), col(GroupBuyTeam.id).desc()).limit(CARD_FILLED)))
    filled_count = (await session.exec(select(func.count()).select_from(GroupBuyTeam).where(
        GroupBuyTeam.group_buy_id == group_buy_id, GroupBuyTeam.status == TeamStatus.SUCCEEDED))).one()
    participants, units = (await session.exec(
        select(func.count(func.distinct(Order.user_id)), func.coalesce(func.sum(Order.quantity), 0))
        .where(Order.group_buy_id == group_buy_id, col(Order.status).in_(SEATED)))).one()
    shown = open_teams[:teams]
    openers = await _openers(session, {t.opener_id for t in shown + filled})
    return Board(campaign, product, community, [_card_team(t, openers) for t in shown], len(open_teams),
                 [_card_team(t, openers) for t in filled], int(filled_count), int(participants), int(units))


async def team_line(session: AsyncSession, *, team_id: int) -> CardTeam | None:
    team = await session.get(GroupBuyTeam, team_id, populate_existing=True)
    if team is None:
        return None
    return _card_team(team, await _openers(session, {team.opener_id}))


async def claim_stale(session: AsyncSession, *, limit: int = 100) -> list[int]:
    """Cards whose campaign changed since they were last drawn; each claimed once (refresh_due
    cleared), and commit. Whatever happens after the claim marks the card stale again."""
    stale = list(await session.exec(select(GroupBuy.id).where(col(GroupBuy.refresh_due), col(GroupBuy.message_id).is_not(None))
                                    .order_by(GroupBuy.id).limit(limit)))
    claimed = []
    for campaign_id in stale:
        result = await session.execute(update(GroupBuy).where(GroupBuy.id == campaign_id, col(GroupBuy.refresh_due))
                                       .values(refresh_due=False))
        if result.rowcount == 1:
            claimed.append(campaign_id)
    await session.commit()
    return claimed


async def mark_live_stale(session: AsyncSession) -> int:
    """Every live campaign's card is to be drawn again (its time left moves on). Commits."""
    result = await session.execute(update(GroupBuy).where(GroupBuy.status == GroupBuyStatus.LIVE,
                                                          col(GroupBuy.message_id).is_not(None),
                                                          col(GroupBuy.refresh_due).is_(False))
                                   .values(refresh_due=True))
    await session.commit()
    return result.rowcount


async def mark_stale(session: AsyncSession, *, group_buy_id: int) -> None:
    """An edit did not get through, or the card changed while it was being posted. Commits."""
    await session.execute(update(GroupBuy).where(GroupBuy.id == group_buy_id, col(GroupBuy.message_id).is_not(None))
                          .values(refresh_due=True))
    await session.commit()


async def set_rendered(session: AsyncSession, *, group_buy_id: int, rendered: str) -> None:
    await session.execute(update(GroupBuy).where(GroupBuy.id == group_buy_id).values(rendered=rendered))
    await session.commit()


async def member_communities(session: AsyncSession, *, user_id: int) -> list[Community]:
    """Active communities that are the member's (for /groupbuy in private)."""
    return await members.communities_of(session, user_id=user_id, active_only=True)


@dataclass(frozen=True, slots=True)
class Listed:
    campaign: GroupBuy
    product: Product
    # The team campaign's open team closest to full (the one worth joining), if any.
    best_team: GroupBuyTeam | None
    open_teams: int


async def open_listing(session: AsyncSession, *, community_id: int, now: datetime) -> list[Listed]:
    """What /groupbuy lists for one community."""
    listed = []
    for campaign, product in await groupbuys.open_in(session, community_id=community_id, now=now):
        teams = await groupbuys.open_teams(session, group_buy_id=campaign.id, now=now)
        listed.append(Listed(campaign, product, teams[0] if teams else None, len(teams)))
    return listed


async def team_ref(session: AsyncSession, *, team_id: int, inviter_id: int | None) -> JoinRef:
    """What a "join my team" link joins. The inviter comes from the link, so it is kept only when
    they really hold a seat in that team."""
    team = await session.get(GroupBuyTeam, team_id)
    if team is None:
        raise DomainError("team_unknown")
    if inviter_id is not None and not await groupbuy_join.in_team(session, team_id=team_id, user_id=inviter_id):
        inviter_id = None
    return JoinRef(team.group_buy_id, JoinMode.TEAM, team.id, inviter_id)
