"""Products a leader sells: create, edit, pause, resume, archive, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.numbers import whole_number
from bot.services import audit, job_marks
from bot.services.errors import DomainError
from bot.services.upsert import insert_for
from models import Community
from models.shop import PostStatus, Product, ProductPost, ProductStatus

TITLE_MAX = 64
DESCRIPTION_MAX = 700  # leaves room in a 1,024-character photo caption for price and stock
STOCK_MAX = 1_000_000
LIMIT_MAX = 10_000
NUMBER_ATTEMPTS = 20  # concurrent creations in one community, each retried with the next number


@dataclass(frozen=True, slots=True)
class ProductDraft:
    title: str
    description: str
    price: int
    stock: int | None
    per_member_limit: int | None
    photo_file_id: str | None = None


def clean_title(raw: str) -> str:
    title = " ".join(raw.split())
    if not title:
        raise DomainError("product_title_empty")
    if len(title) > TITLE_MAX:
        raise DomainError("product_title_too_long", max=TITLE_MAX, length=len(title))
    return title


def clean_description(raw: str) -> str:
    text = raw.strip()
    if len(text) > DESCRIPTION_MAX:
        raise DomainError("product_description_too_long", max=DESCRIPTION_MAX, length=len(text))
    return text


def check_price(price: int) -> int:
    if price <= 0:
        raise DomainError("product_price_zero")
    return price


def check_stock(stock: int | None) -> int | None:
    if stock is not None and not 0 <= stock <= STOCK_MAX:
        raise DomainError("product_stock_range", max=STOCK_MAX)
    return stock


def check_limit(limit: int | None) -> int | None:
    if limit is not None and not 1 <= limit <= LIMIT_MAX:
        raise DomainError("product_limit_range", max=LIMIT_MAX)
    return limit


def parse_count(raw: str, *, maximum: int, code: str) -> int:
    """A whole number between 1 and `maximum` typed by a leader."""
    text = raw.strip().replace(",", "").replace(" ", "")
    value = whole_number(text.removeprefix("-"))
    if value is None:
        raise DomainError(f"{code}_format", value=raw.strip()[:16])
    if text.startswith("-") or value < 1 or value > maximum:
        raise DomainError(f"{code}_range", max=maximum)
    return value


def parse_stock(raw: str) -> int | None:
    """A number of units, or "-"/"∞"/"unlimited"/"不限" for no limit."""
    if raw.strip().lower() in ("-", "∞", "unlimited", "none", "不限", "无限"):
        return None
    if whole_number(raw.strip()) == 0:
        return 0
    return parse_count(raw, maximum=STOCK_MAX, code="product_stock")


def parse_limit(raw: str) -> int | None:
    if raw.strip().lower() in ("-", "none", "no", "不限", "无") or whole_number(raw.strip()) == 0:
        return None
    return parse_count(raw, maximum=LIMIT_MAX, code="product_limit")


async def next_number(session: AsyncSession, *, community_id: int) -> int:
    """The number the community's next product gets (shown on the card preview before saving)."""
    last = await session.exec(select(func.max(Product.number)).where(Product.community_id == community_id))
    return (last.one() or 0) + 1


async def create(session: AsyncSession, *, community: Community, actor_id: int, draft: ProductDraft, now: datetime,
                 once_key: str | None = None) -> Product:
    """Add a product with the community's next number and commit.

    `once_key` names the form that asked: a second Save of the same form (a double tap, two taps
    handled at once) is refused with `product_already_saved` instead of making a second product.

    Two leaders adding a product at the same moment read the same highest number; the one whose
    insert finds the number taken reads again and takes the next. INSERT ... ON CONFLICT DO NOTHING
    rather than a savepoint: on SQLite a savepoint opened first in a transaction commits on release.
    """
    fields = dict(
        community_id=community.id,
        title=clean_title(draft.title),
        description=clean_description(draft.description),
        price=check_price(draft.price),
        stock=check_stock(draft.stock),
        sold=0,
        per_member_limit=check_limit(draft.per_member_limit),
        photo_file_id=draft.photo_file_id,
        status=ProductStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    if once_key is not None and not await job_marks.claim(session, job="product.create", key=once_key, now=now):
        await session.rollback()
        raise DomainError("product_already_saved")
    for _ in range(NUMBER_ATTEMPTS):
        last = await session.exec(select(func.max(Product.number)).where(Product.community_id == community.id))
        number = (last.one() or 0) + 1
        inserted = await session.execute(
            insert_for(session, Product.__table__).values(number=number, **fields)
            .on_conflict_do_nothing(index_elements=["community_id", "number"])
        )
        if inserted.rowcount == 1:
            break
    else:
        raise RuntimeError(f"no free product number in community {community.id} after {NUMBER_ATTEMPTS} tries")
    product = (await session.exec(select(Product).where(Product.community_id == community.id,
                                                        Product.number == number))).one()
    audit.record(session, community_id=community.id, actor_id=actor_id, action="product.create",
                 details={"id": product.id, "number": product.number, "title": product.title, "price": product.price}, now=now)
    await session.commit()
    return product


async def get(session: AsyncSession, *, community_id: int, product_id: int) -> Product:
    product = await session.get(Product, product_id)
    if product is None or product.community_id != community_id:
        raise DomainError("product_unknown")
    return product


async def with_community(session: AsyncSession, *, product_id: int, community_id: int) -> tuple[Product, Community] | None:
    """A product and its community in one round trip (an open checkout reads both on every step)."""
    row = (await session.exec(select(Product, Community).join(Community, Community.id == Product.community_id)
                              .where(Product.id == product_id, Product.community_id == community_id))).first()
    return (row[0], row[1]) if row is not None else None


async def get_editable(session: AsyncSession, *, community_id: int, product_id: int) -> Product:
    """`get`, refused with `product_archived` for an archived product: it can no longer change."""
    product = await get(session, community_id=community_id, product_id=product_id)
    if product.status == ProductStatus.ARCHIVED:
        raise DomainError("product_archived", number=product.number)
    return product


async def by_number(session: AsyncSession, *, community_id: int, number: int) -> Product:
    result = await session.exec(select(Product).where(Product.community_id == community_id, Product.number == number))
    product = result.first()
    if product is None:
        raise DomainError("product_unknown_number", number=number)
    return product


async def listing(session: AsyncSession, *, community_id: int, include_archived: bool = False) -> list[Product]:
    query = select(Product).where(Product.community_id == community_id)
    if not include_archived:
        query = query.where(Product.status != ProductStatus.ARCHIVED)
    return list(await session.exec(query.order_by(Product.number)))


async def on_sale(session: AsyncSession, *, community_id: int, limit: int, besides: int | None = None) -> list[Product]:
    """Products a member can order now (on sale, not sold out), by number; `besides` left out."""
    query = select(Product).where(Product.community_id == community_id, Product.status == ProductStatus.ACTIVE,
                                  or_(col(Product.stock).is_(None), col(Product.stock) > 0))
    if besides is not None:
        query = query.where(Product.id != besides)
    return list(await session.exec(query.order_by(Product.number).limit(limit)))


async def page(session: AsyncSession, *, community_id: int, archived: bool, offset: int, limit: int) -> tuple[list[Product], int]:
    """One page of the products on sale or paused (or, with `archived`, the archived ones), by
    number, and how many there are in all."""
    shown = (Product.status == ProductStatus.ARCHIVED) if archived else (Product.status != ProductStatus.ARCHIVED)
    where = (Product.community_id == community_id, shown)
    total = (await session.exec(select(func.count()).select_from(Product).where(*where))).one()
    items = await session.exec(select(Product).where(*where).order_by(Product.number).offset(offset).limit(limit))
    return list(items), total


EDITABLE = ("title", "description", "price", "stock", "per_member_limit", "photo_file_id")


async def edit(session: AsyncSession, *, community_id: int, product_id: int, actor_id: int, now: datetime,
               **changes: object) -> Product:
    """Change fields of a product, audit them, mark its group cards for refresh, and commit."""
    product = await get_editable(session, community_id=community_id, product_id=product_id)
    cleaners = {"title": clean_title, "description": clean_description, "price": check_price, "stock": check_stock,
                "per_member_limit": check_limit}
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable product fields: {sorted(unknown)}")
    # Every value is checked before any is set: a refused edit must leave nothing on the session
    # object for the update's closing commit to write.
    cleaned = {key: cleaners[key](value) if key in cleaners else value for key, value in changes.items()}
    diff = {key: {"from": getattr(product, key), "to": value} for key, value in cleaned.items() if getattr(product, key) != value}
    for key, change in diff.items():
        setattr(product, key, change["to"])
    if diff:
        product.updated_at = now
        await mark_cards_stale(session, product_id=product.id)
        audit.record(session, community_id=community_id, actor_id=actor_id, action="product.edit",
                     details={"id": product.id, **{k: v["to"] for k, v in diff.items() if k != "photo_file_id"}}, now=now)
        await session.commit()
    return product


async def set_status(session: AsyncSession, *, community_id: int, product_id: int, actor_id: int, status: ProductStatus,
                     now: datetime) -> Product:
    product = await get(session, community_id=community_id, product_id=product_id)
    if product.status == ProductStatus.ARCHIVED and status != ProductStatus.ARCHIVED:
        raise DomainError("product_archived", number=product.number)
    if product.status != status:
        before = product.status
        product.status = status
        product.updated_at = now
        await mark_cards_stale(session, product_id=product.id)
        if status == ProductStatus.ARCHIVED:
            # An archived product is never posted again: its scheduled posts are called off.
            await session.execute(
                update(ProductPost).where(ProductPost.product_id == product.id, ProductPost.status == PostStatus.SCHEDULED)
                .values(status=PostStatus.CANCELLED)
            )
        audit.record(session, community_id=community_id, actor_id=actor_id, action=f"product.{status.value}",
                     details={"id": product.id, "from": before}, now=now)
        await session.commit()
    return product


_posts = ProductPost.__table__
# Built once, as Core: every order sends it, and building it cost more CPU than sending it.
_CARDS_STALE = (update(_posts).where(_posts.c.product_id == bindparam("b_product"), _posts.c.status == PostStatus.POSTED,
                                     _posts.c.refresh_due.is_(False))
                .values(refresh_due=True))


async def mark_cards_stale(session: AsyncSession, *, product_id: int) -> None:
    """Posted cards of this product show old stock or state; the card updater will edit them."""
    await session.execute(_CARDS_STALE, {"b_product": product_id})
