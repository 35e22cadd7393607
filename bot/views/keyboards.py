"""Every CallbackData factory in one place. Prefixes are short: Telegram allows 64 bytes in all.

Callback data comes from the client; handlers re-check every id and the actor's role.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class Section(StrEnum):
    MENU = "menu"
    SETTINGS = "set"
    TIMEZONE = "tz"
    CURRENCY = "cur"
    LANGUAGE = "lang"
    PICKUPS = "pick"
    AUDIT = "audit"
    PRODUCTS = "prod"
    ORDERS = "ord"
    COUPONS = "coup"
    SHOP = "shop"
    GROUPBUYS = "gb"
    CHECKIN = "ci"
    INVITES = "inv"
    CAMPAIGNS = "cmp"
    STATS = "st"
    DIGEST = "dg"


class AdminPick(CallbackData, prefix="ap"):
    """Choose a community to administer (list shown by /admin)."""

    community_id: int


class AdminNav(CallbackData, prefix="an"):
    community_id: int
    section: Section


class CommunityLang(CallbackData, prefix="cl"):
    community_id: int
    locale: str


class PickupAction(StrEnum):
    ADD = "add"
    OPEN = "open"
    RENAME = "ren"
    REMOVE = "rm"
    REMOVE_CONFIRM = "rmy"


class Pickup(CallbackData, prefix="pp"):
    community_id: int
    action: PickupAction
    point_id: int = 0


class FormAction(StrEnum):
    BACK = "back"
    CANCEL = "cancel"


class Form(CallbackData, prefix="fm"):
    action: FormAction


class UserLang(CallbackData, prefix="ul"):
    locale: str


class PrivacyAction(StrEnum):
    OPT_OUT = "out"
    OPT_IN = "in"
    STOP_OFFERS = "so"  # under an offer: opts out and leaves the offer readable
    FORGET = "forget"
    KEEP = "keep"


class Privacy(CallbackData, prefix="pv"):
    action: PrivacyAction


class BuyProduct(CallbackData, prefix="by"):
    """The Buy button on a product card in the group."""

    product_id: int


class ProductList(CallbackData, prefix="prl"):
    """A page of the leader's product list; `archived` lists the archived products instead."""

    community_id: int
    page: int = 0
    archived: bool = False


class ProductOp(StrEnum):
    NEW = "new"
    OPEN = "open"
    PAUSE = "pause"
    RESUME = "resume"
    ARCHIVE = "arch"
    ARCHIVE_CONFIRM = "archy"
    POST_NOW = "post"
    SCHEDULE = "sched"
    CANCEL_POST = "cpost"


class ProductAction(CallbackData, prefix="pra"):
    """A leader's action on one product (product_id 0 for NEW; post_id for CANCEL_POST)."""

    community_id: int
    product_id: int
    op: ProductOp
    post_id: int = 0


class ProductFieldKey(StrEnum):
    TITLE = "title"
    DESCRIPTION = "desc"
    PRICE = "price"
    STOCK = "stock"
    LIMIT = "limit"
    PHOTO = "photo"


class ProductField(CallbackData, prefix="prf"):
    """Edit one field of a product (a one-step form)."""

    community_id: int
    product_id: int
    field: ProductFieldKey


class ProductFormOp(StrEnum):
    BACK = "back"
    CANCEL = "cancel"
    SKIP = "skip"  # the step's "no value": Skip, Unlimited, No limit, Remove photo
    SAVE = "save"


class ProductFormNav(CallbackData, prefix="prn"):
    """Buttons of the product, product-edit and post-time forms. `step` names the form step the
    button was shown for, so a button left on an earlier prompt cannot act on a later step."""

    op: ProductFormOp
    step: str


class CheckoutAction(StrEnum):
    QUANTITY = "q"
    PICKUP = "p"
    DELIVERY = "d"
    COUPON = "c"
    NO_COUPON = "nc"
    PAY = "pay"
    CONFIRM = "ok"
    BACK = "back"
    CANCEL = "x"


class Checkout(CallbackData, prefix="co"):
    """A press in the private checkout. `tag` names the checkout, so buttons left on an older
    checkout's messages cannot act on the current one; `value` is a quantity or an id."""

    tag: str
    action: CheckoutAction
    value: int = 0


class MemberOrderAction(StrEnum):
    PAGE = "page"
    CANCEL = "cancel"
    CANCEL_CONFIRM = "yes"
    PAY = "pay"  # send the invoice of an unpaid online order again


class MemberOrders(CallbackData, prefix="mo"):
    """A member's own order list (/orders): pages and cancelling."""

    action: MemberOrderAction
    order_id: int = 0
    page: int = 0


class OrdersOp(StrEnum):
    LIST = "l"
    STATUS_MENU = "fs"
    PRODUCT_MENU = "fp"
    PLACE_MENU = "fk"
    VIEW = "v"
    MARK_PAID = "mp"
    MARK_FULFILLED = "mf"
    MARK_PICKED_UP = "mu"
    CANCEL = "x"
    CANCEL_CONFIRM = "xy"
    REFUND_STARS = "rs"
    MARK_REFUNDED = "rd"
    BULK_FULFILLED = "bf"
    BULK_PICKED_UP = "bu"
    BULK_FULFILLED_CONFIRM = "bfy"
    BULK_PICKED_UP_CONFIRM = "buy"
    PICK_LIST = "k"
    EXPORT = "e"


class AdminOrders(CallbackData, prefix="ao"):
    """/admin → Orders. Every button carries the list's filter (state key, product id or 0,
    place: pickup point id, -1 delivery or 0 any) and page, so Back returns to the same list.
    `order_id` is the order acted on, or for a bulk confirmation the newest order counted."""

    community_id: int
    op: OrdersOp
    status: str = "open"
    product_id: int = 0
    place: int = 0
    page: int = 0
    order_id: int = 0


class CouponOp(StrEnum):
    NEW = "n"
    FIXED = "kf"
    PERCENT = "kp"
    SKIP = "s"
    SINGLE_YES = "y"
    SINGLE_NO = "m"
    ANYONE = "a"
    GENERATE = "g"
    SAVE = "v"
    BACK = "b"
    CANCEL = "c"


class CouponAdmin(CallbackData, prefix="cp"):
    """/admin → Coupons and the coupon form's buttons (the form's community is in its FSM data;
    `step` names the step a button was shown for, so a stale button cannot act on a later step)."""

    op: CouponOp
    community_id: int = 0
    step: str = ""


class ShopOp(StrEnum):
    PAY_AT_PICKUP = "pp"
    STARS = "st"
    STARS_RATE = "sr"
    DELIVERY = "dl"
    UNPAID_MINUTES = "um"
    CANCEL_HOURS = "ch"
    SUMMARY_TIME = "sm"
    POST_GRACE = "pg"
    SUMMARY_OFF = "so"
    BACK = "b"
    CANCEL = "c"


class ShopOption(CallbackData, prefix="ss"):
    """Settings → Shop options: a toggle, the start of a one-step form, or the form's buttons."""

    op: ShopOp
    community_id: int = 0


class GroupBuyOp(StrEnum):
    LIST = "l"
    NEW_TEAM = "nt"
    NEW_THRESHOLD = "nh"
    OPEN = "o"
    TEAMS = "ts"
    TEAM = "t"
    PEOPLE = "p"
    EDIT = "ed"
    PUBLISH = "pb"
    END = "e"
    END_CONFIRM = "ey"
    DELETE = "d"
    DELETE_CONFIRM = "dy"


class GroupBuyAdmin(CallbackData, prefix="ga"):
    """/admin → Group-buys: the list, a campaign's screens and actions (`page` pages its teams or
    participants; `team_id` names a team)."""

    community_id: int
    op: GroupBuyOp
    group_buy_id: int = 0
    team_id: int = 0
    page: int = 0


class GroupBuyTerm(StrEnum):
    PRICE = "price"
    TEAM_SIZE = "size"
    TEAM_TIME = "time"
    ENDS_AT = "end"
    OPEN_LIMIT = "open"
    JOIN_LIMIT = "join"
    SOLO = "solo"
    MIN_UNITS = "min"
    TIERS = "tiers"
    MEMBER_LIMIT = "limit"


class GroupBuyEditTerm(CallbackData, prefix="gae"):
    """Change one term of a campaign (a one-step form)."""

    community_id: int
    group_buy_id: int
    term: GroupBuyTerm


class GroupBuyFormOp(StrEnum):
    PICK = "k"  # a choice button: `value` is a product id, a count, days from now, or 1/0 for yes/no
    NONE = "n"  # the step's "none": no tiers / done with tiers, no member limit
    CLEAR = "c"  # forget the tiers typed so far
    PUBLISH = "p"
    BACK = "b"
    CANCEL = "x"


class GroupBuyFormNav(CallbackData, prefix="gaf"):
    """Buttons of the group-buy setup and edit forms. `step` names the step a button was shown
    for, so a button left on an earlier prompt cannot act on a later step."""

    op: GroupBuyFormOp
    step: str
    value: int = 0


class CheckinOption(StrEnum):
    """A check-in setting a leader changes: a toggle or the start of its one-step form."""

    ENABLED = "on"
    CARD_TIME = "ct"
    PIN_CARD = "pin"
    BASE_POINTS = "bp"
    DAILY_INCREMENT = "di"
    INCREMENT_CAP = "cap"
    MAKEUP_DAYS = "md"
    MAKEUP_COST = "mc"
    MAKEUPS_PER_MONTH = "mm"
    FREEZE = "fz"
    PURCHASE_POINTS = "pu"
    REMINDER_HOUR = "rh"
    EXPIRY_MONTHS = "ex"
    QUIET_HOURS = "qh"


class CheckinSet(CallbackData, prefix="cks"):
    """/admin → Check-in & points: change one setting. A switch carries the state it turns to
    (`turn_on`), so a press replayed or tapped twice sets the same state again instead of flipping back."""

    option: CheckinOption
    community_id: int
    turn_on: bool | None = None


class CheckinOp(StrEnum):
    MILESTONES = "ms"
    MILESTONE_POINTS = "mp"
    MILESTONE_COUPON = "mc"  # choose the reward whose coupon terms the milestone gives
    MILESTONE_COUPON_PICK = "mk"  # `item`: the reward
    MILESTONE_REMOVE = "mr"  # `item`: the streak day
    TODAY = "t"
    REWARDS = "r"
    REWARD_OPEN = "ro"  # `item`: the reward, here and below
    REWARD_NEW = "rn"
    REWARD_EDIT = "re"
    REWARD_DELETE = "rd"
    REWARD_DELETE_CONFIRM = "ry"
    ADJUST = "a"


class CheckinAdmin(CallbackData, prefix="cka"):
    """/admin → Check-in & points: its screens and actions on milestones and rewards."""

    op: CheckinOp
    community_id: int
    item: int = 0


class CheckinFormOp(StrEnum):
    OFF = "off"  # the step's "off": no card, no reminder, no quiet hours, no milestones
    KEEP = "k"  # editing a reward: keep this step's current value
    SKIP = "s"  # no cap, no minimum spend, never expires
    FIXED = "kf"
    PERCENT = "kp"
    SAVE = "v"
    CONFIRM = "y"
    BACK = "b"
    CANCEL = "c"


class CheckinFormNav(CallbackData, prefix="ckf"):
    """Buttons of the check-in settings, reward and adjustment forms (the form's community is in
    its FSM data; `step` names the step a button was shown for, so a stale button cannot act on a
    later step)."""

    op: CheckinFormOp
    step: str


class InviteOption(StrEnum):
    """An invitation setting a leader changes: a switch, a choice, or the start of its one-step form."""

    ENABLED = "on"
    APPROVE_JOINS = "aj"
    REQUIRE = "rq"
    QUALIFY_DAYS = "qd"
    BURST_JOINS = "bj"
    BURST_MINUTES = "bm"
    LEAVE_RATE = "lr"
    LEAVE_MIN_INVITES = "lm"


class InviteSet(CallbackData, prefix="ivs"):
    """/admin → Invites: change one setting. A switch carries the state it turns to (`turn_on`) and
    a choice the value it sets (`value`), so a replayed press sets the same again."""

    option: InviteOption
    community_id: int
    turn_on: bool | None = None
    value: str = ""


class InviteOp(StrEnum):
    LEVEL = "lv"  # `item`: the chain level (1 or 2), here and in the LEVEL_* ops
    LEVEL_POINTS = "lp"
    LEVEL_COUPON = "lc"
    LEVEL_NO_COUPON = "ln"
    LEVEL_OFF = "lo"
    TOP = "top"
    REVIEW = "rv"  # `item`: the page
    CHAIN = "ch"
    EXPORT = "csv"


class InviteAdmin(CallbackData, prefix="iva"):
    """/admin → Invites: its screens and the actions on level rewards."""

    op: InviteOp
    community_id: int
    item: int = 0


class InviteReviewOp(StrEnum):
    APPROVE = "a"
    REJECT = "r"


class InviteReview(CallbackData, prefix="ivr"):
    """/admin → Invites → Review: approve or reject one held invite (`page`: the page to show after)."""

    op: InviteReviewOp
    community_id: int
    referral_id: int
    page: int = 0


class InviteFormOp(StrEnum):
    FIXED = "kf"
    PERCENT = "kp"
    SKIP = "s"
    SAVE = "v"
    BACK = "b"
    CANCEL = "c"


class InviteFormNav(CallbackData, prefix="ivf"):
    """Buttons of the invitation forms (settings, a level's coupon, the chain view's member); the
    community is in the form's FSM data, `step` names the step a button was shown for."""

    op: InviteFormOp
    step: str


class StatsScreen(StrEnum):
    OVERVIEW = "ov"
    GROWTH = "gr"
    RETENTION = "re"
    ACTIVITY = "ac"
    SALES = "sa"
    FUNNEL = "fu"
    ENGAGEMENT = "en"


class StatsOp(StrEnum):
    VIEW = "v"
    CSV = "c"


class StatsView(CallbackData, prefix="sv"):
    """/admin → Stats: show a screen's chart (in place of the one pressed) or send its CSV."""

    community_id: int
    screen: StatsScreen
    op: StatsOp = StatsOp.VIEW


class DigestOp(StrEnum):
    ON = "on"
    OFF = "off"
    WEEKDAY = "d"
    TIME = "t"


class DigestOption(CallbackData, prefix="sd"):
    """/admin → Settings → Weekly stats digest: turn it on or off, pick its weekday (1-7) or hour (0-23)."""

    community_id: int
    op: DigestOp
    value: int = 0
