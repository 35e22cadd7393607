"""Products a leader sells: create, edit, pause, resume, archive, list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.services import audit
from bot.services.errors import DomainError
from models import Community
from models.shop import PostStatus, Product, ProductPost, ProductStatus

TITLE_MAX = 64
DESCRIPTION_MAX = 700  # leaves room in a 1,024-character photo caption for price and stock
STOCK_MAX = 1_000_000
LIMIT_MAX = 10_000


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


def parse_count(raw: str, *, maximum: int, code: str) -> int:
    """A whole number between 1 and `maximum` typed by a leader."""
    text = raw.strip().replace(",", "").replace(" ", "")
    if not text.lstrip("-").isdigit():
        raise DomainError(f"{code}_format", value=raw.strip()[:16])
    value = int(text)
    if value < 1 or value > maximum:
        raise DomainError(f"{code}_range", max=maximum)
    return value


def parse_stock(raw: str) -> int | None:
    """A number of units, or "-"/"∞"/"unlimited"/"不限" for no limit."""
    if raw.strip().lower() in ("-", "∞", "unlimited", "none", "不限", "无限"):
        return None
    text = raw.strip().replace(",", "")
    if text == "0":
        return 0
    return parse_count(raw, maximum=STOCK_MAX, code="product_stock")


def parse_limit(raw: str) -> int | None:
    if raw.strip().lower() in ("-", "0", "none", "no", "不限", "无"):
        return None
    return parse_count(raw, maximum=LIMIT_MAX, code="product_limit")


async def create(session: AsyncSession, *, community: Community, actor_id: int, draft: ProductDraft, now: datetime) -> Product:
    """Add a product with the community's next number and commit."""
    last = await session.exec(select(func.max(Product.number)).where(Product.community_id == community.id))
    product = Product(
        community_id=community.id,
        number=(last.one() or 0) + 1,
        title=clean_title(draft.title),
        description=clean_description(draft.description),
        price=check_price(draft.price),
        stock=draft.stock,
        per_member_limit=draft.per_member_limit,
        photo_file_id=draft.photo_file_id,
        created_at=now,
        updated_at=now,
    )
    session.add(product)
    await session.flush()
    audit.record(session, community_id=community.id, actor_id=actor_id, action="product.create",
                 details={"id": product.id, "number": product.number, "title": product.title, "price": product.price}, now=now)
    await session.commit()
    return product


async def get(session: AsyncSession, *, community_id: int, product_id: int) -> Product:
    product = await session.get(Product, product_id)
    if product is None or product.community_id != community_id:
        raise DomainError("product_unknown")
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


EDITABLE = ("title", "description", "price", "stock", "per_member_limit", "photo_file_id")


async def edit(session: AsyncSession, *, community_id: int, product_id: int, actor_id: int, now: datetime,
               **changes: object) -> Product:
    """Change fields of a product, audit them, mark its group cards for refresh, and commit."""
    product = await get(session, community_id=community_id, product_id=product_id)
    if product.status == ProductStatus.ARCHIVED:
        raise DomainError("product_archived")
    cleaners = {"title": clean_title, "description": clean_description, "price": check_price}
    diff = {}
    for key, value in changes.items():
        if key not in EDITABLE:
            raise ValueError(f"not an editable product field: {key}")
        value = cleaners[key](value) if key in cleaners else value
        if getattr(product, key) != value:
            diff[key] = {"from": getattr(product, key), "to": value}
            setattr(product, key, value)
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
        raise DomainError("product_archived")
    if product.status != status:
        before = product.status
        product.status = status
        product.updated_at = now
        await mark_cards_stale(session, product_id=product.id)
        audit.record(session, community_id=community_id, actor_id=actor_id, action=f"product.{status.value}",
                     details={"id": product.id, "from": before}, now=now)
        await session.commit()
    return product


async def mark_cards_stale(session: AsyncSession, *, product_id: int) -> None:
    """Posted cards of this product show old stock or state; the card updater will edit them."""
    await session.execute(
        update(ProductPost)
        .where(ProductPost.product_id == product_id, ProductPost.status == PostStatus.POSTED, col(ProductPost.refresh_due).is_(False))
        .values(refresh_due=True)
    )
