"""Products and posts, the parts the leader's product screens and the post jobs rely on: pages of
the list, archiving calls off scheduled posts, "post now" claims one post, late-but-in-grace posts
survive the crash sweep, missed posts stay visible for a while, and a card can be queued again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from shop_builders import LEADER, make_product, make_shop
from sqlmodel import select

from bot.services import posts, products
from bot.services.errors import DomainError
from models import Community
from models.shop import PostStatus, Product, ProductPost, ProductStatus


async def test_page_splits_active_and_archived_and_counts(session, t0):
    shop = await make_shop(session, now=t0, chat_id=-1)
    other = await make_shop(session, now=t0, chat_id=-2)
    made = [await make_product(session, shop, now=t0, title=f"P{i}") for i in range(1, 14)]
    await make_product(session, other, now=t0, title="Elsewhere")
    for product in made[:2]:
        await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                                  status=ProductStatus.ARCHIVED, now=t0)
    await products.set_status(session, community_id=shop.id, product_id=made[2].id, actor_id=LEADER,
                              status=ProductStatus.PAUSED, now=t0)

    first, total = await products.page(session, community_id=shop.id, archived=False, offset=0, limit=10)
    assert total == 11 and [p.title for p in first] == [f"P{i}" for i in range(3, 13)]  # paused ones stay listed
    rest, total = await products.page(session, community_id=shop.id, archived=False, offset=10, limit=10)
    assert total == 11 and [p.title for p in rest] == ["P13"]
    archived, total = await products.page(session, community_id=shop.id, archived=True, offset=0, limit=10)
    assert total == 2 and [p.title for p in archived] == ["P1", "P2"]
    assert await products.page(session, community_id=shop.id, archived=False, offset=20, limit=10) == ([], 11)
    assert await products.next_number(session, community_id=shop.id) == 14
    assert await products.next_number(session, community_id=other.id) == 2


async def test_archiving_cancels_scheduled_posts_only(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    posted = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    [claim] = await posts.claim_due(session, now=t0)
    await posts.mark_posted(session, post=claim.post, chat_id=-100, message_id=7, with_photo=False, rendered="x", now=t0)
    waiting = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                   due_at=t0 + timedelta(hours=3), now=t0)
    paused_first = await make_product(session, shop, now=t0, title="Other")
    untouched = await posts.schedule(session, community=shop.community, product=paused_first, actor_id=LEADER,
                                     due_at=t0 + timedelta(hours=3), now=t0)

    await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                              status=ProductStatus.PAUSED, now=t0)
    async with fresh() as s:
        assert (await s.get(ProductPost, waiting.id)).status == PostStatus.SCHEDULED  # a pause may end before it is due
    await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                              status=ProductStatus.ARCHIVED, now=t0)
    async with fresh() as s:
        rows = {p.id: (p.status, p.refresh_due) for p in await s.exec(select(ProductPost))}
    assert rows == {posted.id: (PostStatus.POSTED, True), waiting.id: (PostStatus.CANCELLED, False),
                    untouched.id: (PostStatus.SCHEDULED, False)}
    assert await posts.upcoming(session, community_id=shop.id, product_id=product.id) == []


async def test_archived_refusals_name_the_product(session, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    await products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                              status=ProductStatus.ARCHIVED, now=t0)
    for attempt in (
        products.edit(session, community_id=shop.id, product_id=product.id, actor_id=LEADER, now=t0, price=5),
        products.set_status(session, community_id=shop.id, product_id=product.id, actor_id=LEADER,
                            status=ProductStatus.ACTIVE, now=t0),
    ):
        with pytest.raises(DomainError) as exc:
            await attempt
        assert (exc.value.code, exc.value.params) == ("product_archived", {"number": product.number})


async def test_claim_one_post_for_post_now(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    other = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    mine = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)

    [claim] = await posts.claim_due(session, now=t0, post_id=mine.id)
    assert (claim.post.id, claim.post.status, claim.missed) == (mine.id, PostStatus.POSTING, False)
    assert claim.product.id == product.id and claim.community.id == shop.id
    assert await posts.claim_due(session, now=t0, post_id=mine.id) == []  # a second tap, or the job, gets nothing
    async with fresh() as s:
        assert (await s.get(ProductPost, other.id)).status == PostStatus.SCHEDULED


async def test_late_post_in_grace_is_not_swept_as_interrupted(session, fresh, t0):
    """A post found 30 minutes late (grace 60) is claimed for sending, not failed as a crashed send."""
    shop = await make_shop(session, now=t0, post_grace_minutes=60)
    product = await make_product(session, shop, now=t0)
    post = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    [claim] = await posts.claim_due(session, now=t0 + timedelta(minutes=30))
    assert claim.post.id == post.id and not claim.missed
    async with fresh() as s:
        assert (await s.get(ProductPost, post.id)).status == PostStatus.POSTING


async def test_concurrent_claims_of_one_post_give_it_once(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    post = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)

    async def worker(only_this: bool):
        async with fresh() as s:
            return [c.post.id for c in await posts.claim_due(s, now=t0, post_id=post.id if only_this else None)]

    results = await asyncio.gather(worker(True), worker(False), worker(True), worker(False))
    assert sorted(pid for batch in results for pid in batch) == [post.id]


async def test_upcoming_shows_missed_posts_for_a_while(session, t0):
    shop = await make_shop(session, now=t0, post_grace_minutes=10)
    product = await make_product(session, shop, now=t0)
    old = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    recent = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                  due_at=t0 + timedelta(days=8), now=t0)
    later = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                 due_at=t0 + timedelta(days=20), now=t0)
    claims = await posts.claim_due(session, now=t0 + timedelta(days=9))
    assert {(c.post.id, c.missed) for c in claims} == {(old.id, True), (recent.id, True)}

    now = t0 + timedelta(days=9)
    assert [p.id for p in await posts.upcoming(session, community_id=shop.id)] == [old.id, recent.id, later.id]
    shown = await posts.upcoming(session, community_id=shop.id, product_id=product.id, missed_since=now - timedelta(days=7))
    assert [(p.id, p.status) for p in shown] == [(recent.id, PostStatus.MISSED), (later.id, PostStatus.SCHEDULED)]


async def test_mark_stale_requeues_a_posted_card_only(session, fresh, t0):
    shop = await make_shop(session, now=t0)
    product = await make_product(session, shop, now=t0)
    post = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER, due_at=t0, now=t0)
    waiting = await posts.schedule(session, community=shop.community, product=product, actor_id=LEADER,
                                   due_at=t0 + timedelta(hours=1), now=t0)
    [claim] = await posts.claim_due(session, now=t0)
    await posts.mark_posted(session, post=claim.post, chat_id=-100, message_id=9, with_photo=True, rendered="a", now=t0)
    assert await posts.claim_stale_cards(session) == []

    await posts.mark_stale(session, post_id=post.id)
    await posts.mark_stale(session, post_id=waiting.id)
    [(card, card_product, community)] = await posts.claim_stale_cards(session)
    assert (card.id, card.with_photo, card.rendered, card_product.id, community.id) == (post.id, True, "a", product.id, shop.id)
    await posts.set_rendered(session, post_id=post.id, rendered="b")
    async with fresh() as s:
        rows = {p.id: (p.refresh_due, p.rendered) for p in await s.exec(select(ProductPost))}
    assert rows == {post.id: (False, "b"), waiting.id: (False, None)}


async def test_one_form_saves_one_product_even_when_saved_twice_at_once(session, fresh, t0, count, audit_rows):
    shop = await make_shop(session, now=t0)

    draft = products.ProductDraft(title="Pears", description="", price=300, stock=5, per_member_limit=None)

    async def save(key: str):  # each in its own session, as two updates handled at once are
        async with fresh() as s:
            community = await s.get(Community, shop.id)
            try:
                return (await products.create(s, community=community, actor_id=LEADER, draft=draft, now=t0, once_key=key)).number
            except DomainError as err:
                return err.code

    results = await asyncio.gather(save("form-a"), save("form-a"), save("form-a"))
    assert sorted(map(str, results)) == ["1", "product_already_saved", "product_already_saved"]
    assert await save("form-b") == 2  # another form is another product
    assert await count(Product) == 2
    assert len(await audit_rows("product.create")) == 2
