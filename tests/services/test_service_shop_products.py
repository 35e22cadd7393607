"""Products, their cards in the group (scheduling and claiming, not sending), shop settings and
job marks, on a real database."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from shop_builders import LEADER, make_product, make_shop
from sqlmodel import select

from bot.core.db import session_factory
from bot.services import job_marks, posts, products
from bot.services.errors import DomainError
from bot.services.products import ProductDraft
from bot.services.shop_settings import ShopSettings, shop_settings, update_shop_settings
from models import Community, JobMark, PostStatus, Product, ProductPost, ProductStatus


def draft(**kw) -> ProductDraft:
    return ProductDraft(**({"title": "Apples", "description": "Crisp", "price": 1250, "stock": 10, "per_member_limit": None} | kw))


# ----- products -----------------------------------------------------------------------------------

async def test_create_numbers_per_community_and_audits(session, fresh, t0, audit_rows):
    a = await make_shop(session, now=t0, chat_id=-1)
    b = await make_shop(session, now=t0, chat_id=-2)
    made = [await products.create(session, community=a.community, actor_id=LEADER, draft=draft(title=f"P{i}"), now=t0)
            for i in range(3)]
    other = await products.create(session, community=b.community, actor_id=LEADER, draft=draft(), now=t0)

    assert [p.number for p in made] == [1, 2, 3] and other.number == 1
    async with fresh() as s:
        row = await s.get(Product, made[0].id)
    assert (row.title, row.description, row.price, row.stock, row.sold, row.status) == ("P0", "Crisp", 1250, 10, 0, "active")
    created = await audit_rows("product.create")
    assert [(e.community_id, e.details["number"]) for e in created] == [(a.id, 1), (a.id, 2), (a.id, 3), (b.id, 1)]


async def test_numbers_never_reused_after_archive(session, t0):
    shop = await make_shop(session, now=t0)
    first = await make_product(session, shop, now=t0)
    await products.set_status(session, community_id=shop.id, product_id=first.id, actor_id=LEADER,
                              status=ProductStatus.ARCHIVED, now=t0)
    assert (await make_product(session, shop, now=t0)).number == 2


async def test_concurrent_creates_get_distinct_numbers(session, fresh, t0):
    """Two leaders adding products at the same moment both succeed, with different numbers."""
    shop = await make_shop(session, now=t0)

    async def add(i: int) -> int:
        async with fresh() as s:
            community = await s.get(Community, shop.id)
            return (await products.create(s, community=community, actor_id=LEADER, draft=draft(title=f"P{i}"), now=t0)).number

    numbers = await asyncio.gather(*(add(i) for i in range(6)))
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("change, code", [
    ({"title": "   "}, "product_title_empty"),
    ({"title": "x" * 65}, "product_title_too_long"),
    ({"description": "d" * 701}, "product_description_too_long"),
    ({"price": 0}, "product_price_zero"),
    ({"price": -5}, "product_price_zero"),
    ({"stock": -1}, "product_stock_range"),
    ({"per_member_limit": 0}, "product_limit_range"),
])
async def test_create_refuses_bad_drafts_and_writes_nothing(session, t0, count, change, code):
    shop = await make_shop(session, now=t0)
    with pytest.raises(DomainError) as exc:
        await products.create(session, community=shop.community, actor_id=LEADER, draft=draft(**change), now=t0)
    assert exc.value.code == code
    assert await count(Product) == 0


def test_title_whitespace_is_collapsed():
    assert products.clean_title("  Big \n  apples\t ") == "Big apples"
    assert products.clean_title("x" * 64) == "x" * 64


@pytest.mark.parametrize("raw, expected", [("10", 10), (" 1,000 ", 1000), ("0", 0), ("-", None), ("∞", None),
                                          ("unlimited", None), ("不限", None), ("1000000", 1_000_000)])
def test_parse_stock(raw, expected):
    assert products.parse_stock(raw) == expected


@pytest.mark.parametrize("raw, code", [("ten", "product_stock_format"), ("-5", "product_stock_range"),
                                       ("1000001", "product_stock_range"), ("1.5", "product_stock_format")])
def test_parse_stock_refuses(raw, code):
    with pytest.raises(DomainError) as exc:
        products.parse_stock(raw)
    assert exc.value.code == code


@pytest.mark.parametrize("raw, expected", [("2", 2), ("-", None), ("0", None), ("不限", None), ("10000", 10000)])
def test_parse_limit(raw, expected):
    assert products.parse_limit(raw) == expected


@pytest.mark.parametrize("raw, code", [("two", "product_limit_format"), ("10001", "product_limit_range")])
def test_parse_limit_refuses(raw, code):
    with pytest.raises(DomainError) as exc:
        products.parse_limit(raw)
    assert exc.value.code == code


async def _posted_card(session, shop, product, now, *, message_id=500) -> ProductPost:
    """A card in the group that the card updater has already checked (nothing pending)."""
    post = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=now, now=now)
    [claim] = await posts.claim_due(session, now=now)
    await posts.mark_posted(session, post=claim.post, chat_id=shop.community.chat_id, message_id=message_id,
                            with_photo=False, rendered="card", now=now)
    await posts.claim_stale_cards(session)
    async with session_factory(session.bind)() as s:
        assert (await s.get(ProductPost, post.id)).refresh_due is False
    return post


async def test_edit_changes_audits_and_marks_posted_cards_stale(session, fresh, t0, audit_rows):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, stock=5)
    card = await _posted_card(session, shop, product, t0)
    waiting = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                   due_at=t0 + timedelta(hours=1), now=t0)
    t1 = t0 + timedelta(minutes=5)

    await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t1,
                        title="  Green  apples ", price=990, stock=None, per_member_limit=3)

    async with fresh() as s:
        row = await s.get(Product, product.id)
        cards = {p.id: p for p in await s.exec(select(ProductPost))}
    assert (row.title, row.price, row.stock, row.per_member_limit, row.updated_at) == ("Green apples", 990, None, 3, t1)
    assert cards[card.id].refresh_due is True
    assert cards[waiting.id].refresh_due is False  # not in the group yet: it will be rendered fresh
    [entry] = await audit_rows("product.edit")
    assert entry.details == {"id": product.id, "title": "Green apples", "price": 990, "stock": None, "per_member_limit": 3}


async def test_edit_without_change_writes_nothing(session, fresh, t0, audit_rows):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, title="Apples", price=1000)
    card = await _posted_card(session, shop, product, t0)
    await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                        now=t0 + timedelta(hours=1), title=" Apples ", price=1000)
    assert await audit_rows("product.edit") == []
    async with fresh() as s:
        assert (await s.get(Product, product.id)).updated_at == t0
        assert (await s.get(ProductPost, card.id)).refresh_due is False


@pytest.mark.parametrize("change, code", [({"price": 0}, "product_price_zero"), ({"title": ""}, "product_title_empty"),
                                          ({"stock": -3}, "product_stock_range"),
                                          ({"per_member_limit": -1}, "product_limit_range")])
async def test_edit_refusal_changes_nothing(session, fresh, t0, change, code):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0, price=1000, stock=4)
    with pytest.raises(DomainError) as exc:
        await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0,
                            **({"title": "Pears"} | change))
    assert exc.value.code == code
    await session.commit()  # what the update's session middleware does after the handler replied
    async with fresh() as s:
        row = await s.get(Product, product.id)
    assert (row.title, row.price, row.stock, row.per_member_limit) == ("Apples", 1000, 4, None)


async def test_edit_refuses_unknown_field_other_community_and_archived(session, t0):
    shop = await make_shop(session, now=t0, chat_id=-1)
    other = await make_shop(session, now=t0, chat_id=-2)
    product = await make_product(session, shop, now=t0)
    with pytest.raises(ValueError):
        await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, sold=0)
    with pytest.raises(DomainError) as exc:
        await products.edit(session, community_id=other.id, product_id=product.id, actor_id=LEADER, now=t0, price=5)
    assert exc.value.code == "product_unknown"
    await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                              status=ProductStatus.ARCHIVED, now=t0)
    with pytest.raises(DomainError) as exc:
        await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, price=5)
    assert exc.value.code == "product_archived"


async def test_pause_resume_archive(session, fresh, t0, audit_rows):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    card = await _posted_card(session, shop, product, t0)

    async def move(status):
        return await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                                         status=status, now=t0)

    assert (await move(ProductStatus.PAUSED)).status == "paused"
    async with fresh() as s:
        assert (await s.get(ProductPost, card.id)).refresh_due is True  # the card now says "paused"
    await move(ProductStatus.PAUSED)  # already paused: nothing to record
    assert (await move(ProductStatus.ACTIVE)).status == "active"
    assert (await move(ProductStatus.ARCHIVED)).status == "archived"
    for status in (ProductStatus.ACTIVE, ProductStatus.PAUSED):
        with pytest.raises(DomainError) as exc:
            await move(status)
        assert exc.value.code == "product_archived"
    assert [e.action for e in await audit_rows() if e.action.startswith("product.")] == [
        "product.create", "product.paused", "product.active", "product.archived"]
    async with fresh() as s:
        assert (await s.get(Product, product.id)).status == "archived"


async def test_listing_and_lookup(session, t0):
    shop = await make_shop(session, now=t0, chat_id=-1)
    other = await make_shop(session, now=t0, chat_id=-2)
    a = await make_product(session, shop, now=t0, title="A")
    b = await make_product(session, shop, now=t0, title="B")
    await make_product(session, other, now=t0, title="Elsewhere")
    await products.set_status(session, community_id=shop.id, product_id=a.id, actor_id=LEADER,
                              status=ProductStatus.ARCHIVED, now=t0)

    assert [p.title for p in await products.listing(session, community_id=shop.id)] == ["B"]
    assert [p.title for p in await products.listing(session, community_id=shop.id, include_archived=True)] == ["A", "B"]
    assert (await products.by_number(session, community_id=shop.id, number=2)).id == b.id
    with pytest.raises(DomainError) as exc:
        await products.by_number(session, community_id=shop.id, number=3)
    assert (exc.value.code, exc.value.params) == ("product_unknown_number", {"number": 3})
    with pytest.raises(DomainError) as exc:
        await products.get(session, community_id=other.id, product_id=b.id)
    assert exc.value.code == "product_unknown"


# ----- product cards: scheduling and claiming ------------------------------------------------------

# t0 is 12:00 UTC, 20:00 in Shanghai.
@pytest.mark.parametrize("raw, expected", [
    ("21:00", datetime(2025, 3, 1, 13, 0, tzinfo=timezone.utc)),   # later today
    ("18:30", datetime(2025, 3, 2, 10, 30, tzinfo=timezone.utc)),  # past today: tomorrow
    ("8:05", datetime(2025, 3, 2, 0, 5, tzinfo=timezone.utc)),
    ("2025-03-05 09:00", datetime(2025, 3, 5, 1, 0, tzinfo=timezone.utc)),
    ("2025-03-05T09:00", datetime(2025, 3, 5, 1, 0, tzinfo=timezone.utc)),
])
def test_parse_local_time_is_in_the_community_zone(t0, raw, expected):
    assert posts.parse_local_time(raw, tz="Asia/Shanghai", now=t0) == expected


@pytest.mark.parametrize("raw, code", [("2025-03-01 19:00", "post_time_past"), ("2025-06-01 10:00", "post_time_far"),
                                       ("tomorrow", "post_time_format"), ("25:00", "post_time_format"),
                                       ("", "post_time_format")])
def test_parse_local_time_refuses(t0, raw, code):
    with pytest.raises(DomainError) as exc:
        posts.parse_local_time(raw, tz="Asia/Shanghai", now=t0)
    assert exc.value.code == code


async def test_schedule_refuses_unsellable_and_foreign_products(session, t0, count):
    shop = await make_shop(session, now=t0, chat_id=-1)
    other = await make_shop(session, now=t0, chat_id=-2)
    product = await make_product(session, shop, now=t0)
    foreign = await make_product(session, other, now=t0)

    async def schedule(community, item):
        return await posts.schedule(session, community=community, product=item, actor_id=LEADER, due_at=t0, now=t0)

    with pytest.raises(DomainError) as exc:
        await schedule(shop.community, foreign)
    assert exc.value.code == "product_unknown"
    for status, code in ((ProductStatus.PAUSED, "product_paused"), (ProductStatus.ARCHIVED, "product_archived")):
        await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, status=status, now=t0)
        with pytest.raises(DomainError) as exc:
            await schedule(shop.community, product)
        assert exc.value.code == code
    other.community.active = False
    with pytest.raises(DomainError) as exc:
        await schedule(other.community, foreign)
    assert exc.value.code == "community_inactive"
    assert await count(ProductPost) == 0


async def test_due_posts_are_claimed_exactly_once_by_concurrent_workers(session, fresh, t0):
    shop = await make_shop(session, now=t0, post_grace_minutes=30)
    product = await make_product(session, shop, now=t0)
    due = [await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                due_at=t0 + timedelta(minutes=i), now=t0) for i in range(5)]
    later = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                 due_at=t0 + timedelta(hours=2), now=t0)
    assert due[0].grace_minutes == 30

    async def worker():
        async with fresh() as s:
            return [c.post.id for c in await posts.claim_due(s, now=t0 + timedelta(minutes=10))]

    claimed = [pid for batch in await asyncio.gather(*(worker() for _ in range(4))) for pid in batch]
    assert sorted(claimed) == [p.id for p in due]
    async with fresh() as s:
        assert (await s.get(ProductPost, later.id)).status == PostStatus.SCHEDULED


async def test_late_post_is_missed_and_interrupted_send_is_not_retried(session, fresh, t0):
    shop = await make_shop(session, now=t0, post_grace_minutes=60)
    product = await make_product(session, shop, now=t0)
    old = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    fresh_one = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                     due_at=t0 + timedelta(minutes=70), now=t0)

    claims = await posts.claim_due(session, now=t0 + timedelta(minutes=75))
    assert {(c.post.id, c.missed) for c in claims} == {(old.id, True), (fresh_one.id, False)}
    # The worker crashed while sending `fresh_one`: ten minutes on it is failed, never sent again.
    assert await posts.claim_due(session, now=t0 + timedelta(minutes=90)) == []
    async with fresh() as s:
        rows = {p.id: p.status for p in await s.exec(select(ProductPost))}
    assert rows == {old.id: PostStatus.MISSED, fresh_one.id: PostStatus.FAILED}
    assert [p.id for p in await posts.upcoming(session, community_id=shop.id)] == [old.id]


async def test_stale_cards_are_claimed_once(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    card = await _posted_card(session, shop, product, t0)
    await products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, price=1)

    async def worker():
        async with fresh() as s:
            return [post.id for post, _, _ in await posts.claim_stale_cards(s)]

    results = await asyncio.gather(*(worker() for _ in range(3)))
    assert sorted(pid for batch in results for pid in batch) == [card.id]
    assert (await posts.find_posted(session, chat_id=shop.community.chat_id, message_id=500)).id == card.id


async def test_cancel_scheduled_post_once(session, fresh, t0, audit_rows):
    shop = await make_shop(session, now=t0, chat_id=-1)
    other = await make_shop(session, now=t0, chat_id=-2)
    product = await make_product(session, shop, now=t0)
    post = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                due_at=t0 + timedelta(hours=1), now=t0)
    with pytest.raises(DomainError) as exc:  # another community's leader cannot cancel it
        await posts.cancel(session, community_id=other.id, post_id=post.id, actor_id=LEADER, now=t0)
    assert exc.value.code == "post_not_scheduled"
    await posts.cancel(session, community_id=shop.id, post_id=post.id, actor_id=LEADER, now=t0)
    with pytest.raises(DomainError) as exc:
        await posts.cancel(session, community_id=shop.id, post_id=post.id, actor_id=LEADER, now=t0)
    assert exc.value.code == "post_not_scheduled"
    async with fresh() as s:
        assert (await s.get(ProductPost, post.id)).status == PostStatus.CANCELLED
    assert len(await audit_rows("post.cancel")) == 1


# ----- shop settings ----------------------------------------------------------------------------

async def test_shop_settings_defaults_update_and_audit(session, fresh, t0, audit_rows):
    shop = await make_shop(session, now=t0)
    shop.community.settings = {k: v for k, v in shop.community.settings.items() if k != "shop"}
    await session.commit()
    assert shop_settings(shop.community) == ShopSettings()

    t1 = t0 + timedelta(minutes=1)
    updated = await update_shop_settings(session, community=shop.community, actor_id=LEADER, now=t1,
                                         stars_enabled=True, stars_per_unit=7, pay_at_pickup=True, summary_time="20:30")
    assert (updated.stars_enabled, updated.stars_per_unit, updated.summary_time) == (True, 7, "20:30")
    async with fresh() as s:
        stored = shop_settings(await s.get(Community, shop.id))
    assert stored == updated
    assert sorted((e.action, e.details["to"]) for e in await audit_rows() if e.action.startswith("shop.")) == [
        ("shop.stars_enabled", True), ("shop.stars_per_unit", 7), ("shop.summary_time", "20:30")]


@pytest.mark.parametrize("change", [{"unpaid_minutes": 1}, {"unpaid_minutes": "soon"}, {"cancel_hours": -1},
                                    {"summary_time": "25:00"}, {"stars_per_unit": 10_001}, {"post_grace_minutes": 0}])
async def test_shop_settings_refuse_invalid_and_store_nothing(session, fresh, t0, audit_rows, change):
    shop = await make_shop(session, now=t0)
    with pytest.raises(DomainError) as exc:
        await update_shop_settings(session, community=shop.community, actor_id=LEADER, now=t0, **change)
    assert exc.value.code == "shop_setting_invalid"
    async with fresh() as s:
        assert shop_settings(await s.get(Community, shop.id)) == ShopSettings()
    assert [e for e in await audit_rows() if e.action.startswith("shop.")] == []


# ----- job marks ---------------------------------------------------------------------------------

async def test_job_mark_claims_once_even_concurrently(session, fresh, t0, count):
    async def claim(key: str) -> bool:
        async with fresh() as s:
            won = await job_marks.claim(s, job="daily_summary", key=key, now=t0)
            await s.commit()
            return won

    assert await claim("1:2025-03-01") is True
    assert await claim("1:2025-03-01") is False
    results = await asyncio.gather(*(claim("1:2025-03-02") for _ in range(6)))
    assert sorted(results) == [False] * 5 + [True]
    assert await count(JobMark) == 2


async def test_job_mark_rolled_back_with_the_work(session, t0, count):
    assert await job_marks.claim(session, job="j", key="k", now=t0) is True
    await session.rollback()  # the work failed: the day is not marked done
    assert await job_marks.claim(session, job="j", key="k", now=t0) is True
    await session.commit()
    assert await count(JobMark) == 1
