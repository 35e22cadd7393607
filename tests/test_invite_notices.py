"""What the qualification job tells rewarded inviters (bot.services.invite_notices and the words of
bot.views.invite_member), on a real database: one notice per person and community, only for people
the bot may write to, a level-2 line naming the friend in between, an erased friend unnamed, and
the coupon the reward gave."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.services import communities, invite_links, invite_notices, invite_rewards, invites, members, users
from bot.services.users import Profile
from bot.views.invite_member import reward_notice
from models import Community, CouponKind, Via

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)
ANN, BEN, CAT = 401, 402, 403
RIGHTS = {"can_invite_users": True, "can_delete_messages": True, "can_pin_messages": True}


def person(uid: int, name: str) -> Profile:
    return Profile(id=uid, first_name=name)


async def community_with_chain(session) -> Community:
    """Ann invited Ben, Ben invited Cat; level 1 gives 10 points and a coupon, level 2 five points."""
    community = (await communities.on_bot_status(session, chat_id=-900, title="Tea <House>", status="administrator",
                                                 rights=RIGHTS, default_locale="en", default_timezone="UTC",
                                                 now=T0)).community
    community.currency = "CNY"
    community.settings = {"invites": {
        "level1": {"points": 10, "coupon": {"kind": CouponKind.FIXED.value, "value": 500, "min_spend": 2000}},
        "level2": {"points": 5}}}
    await session.commit()
    await members.on_member_status(session, community=community, profile=person(ANN, "Ann"), old_status="left",
                                   new_status="member", now=T0)
    for uid, name, inviter in ((BEN, "Ben", ANN), (CAT, "Cat", BEN)):
        link = await invite_links.save_link(session, community_id=community.id, user_id=inviter,
                                            url=f"https://t.me/+x{inviter}", name="x", creates_join_request=False,
                                            now=T0)
        await invites.attribute_join(session, community=community, profile=person(uid, name), is_bot=False,
                                     via=Via.MEMBER_LINK, joined_at=T0, link_url=link.url)
        await members.on_member_status(session, community=community, profile=person(uid, name), old_status="left",
                                       new_status="member", now=T0)
    await users.set_can_dm(session, user_id=ANN, can_dm=True, now=T0)
    return community


async def test_one_notice_per_reachable_inviter_with_both_levels_and_the_coupon(session) -> None:
    await community_with_chain(session)
    report = await invite_rewards.qualify_due(session, as_of=T0 + timedelta(days=3, minutes=1))
    assert {(g.user_id, g.level) for g in report.grants} == {(ANN, 1), (BEN, 1), (ANN, 2)}
    # Ben never started the bot: only Ann is told, once, of both her rewards.
    [notice] = await invite_notices.reward_notices(session, grants=report.grants)
    assert notice.user.id == ANN and notice.community.title == "Tea <House>" and notice.points == 15
    assert [(line.level, line.points, line.friend.first_name, line.friend_hidden, line.coupon is not None)
            for line in notice.lines] == [(1, 10, "Ben", False, True), (2, 5, "Ben", False, False)]
    text = reward_notice(notice, "en")
    coupon = notice.lines[0].coupon
    assert text.splitlines() == [
        "<b>🎉 Your invites in Tea &lt;House&gt; paid off</b>",
        f"• Ben stayed: +10 points · a coupon, <code>{coupon.code}</code> (CN¥5.00 off)",
        "• Someone Ben invited stayed: +5 points",
        "",
        "💰 +15 points in all: /points shows your balance.",
        "🎟 /coupons lists your coupons.",
    ]
    assert "邀请" in reward_notice(notice, "zh_Hans")
    assert await invite_notices.reward_notices(session, grants=[]) == []


async def test_an_erased_friend_is_not_named_and_an_erased_inviter_not_told(session) -> None:
    await community_with_chain(session)
    await users.set_can_dm(session, user_id=BEN, can_dm=True, now=T0)
    report = await invite_rewards.qualify_due(session, as_of=T0 + timedelta(days=3, minutes=1))
    await users.forget(session, user_id=CAT, now=T0 + timedelta(days=4))
    notices = {n.user.id: n for n in await invite_notices.reward_notices(session, grants=report.grants)}
    assert set(notices) == {ANN, BEN}
    [line] = notices[BEN].lines
    assert (line.level, line.friend_hidden) == (1, True)
    assert reward_notice(notices[BEN], "en").splitlines()[1].startswith("• A friend you invited stayed: +10 points")
    await users.forget(session, user_id=ANN, now=T0 + timedelta(days=4))
    assert {n.user.id for n in await invite_notices.reward_notices(session, grants=report.grants)} == {BEN}
