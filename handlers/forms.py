"""FSM forms. Their data holds primitives only (ids, strings), never ORM objects."""

from aiogram.fsm.state import State, StatesGroup


class SettingsForm(StatesGroup):
    timezone = State()
    currency = State()
    pickup_add = State()
    pickup_rename = State()


class ProductForm(StatesGroup):
    title = State()
    description = State()
    price = State()
    stock = State()
    limit = State()
    photo = State()
    preview = State()


class ProductEditForm(StatesGroup):
    title = State()
    description = State()
    price = State()
    stock = State()
    limit = State()
    photo = State()


class PostForm(StatesGroup):
    time = State()


class CheckoutForm(StatesGroup):
    quantity = State()
    pickup = State()
    address = State()
    coupon = State()
    payment = State()
    summary = State()


class CouponForm(StatesGroup):
    kind = State()
    value = State()
    cap = State()
    min_spend = State()
    expiry = State()
    single_use = State()
    owner = State()
    code = State()
    preview = State()


class ShopSettingsForm(StatesGroup):
    stars_per_unit = State()
    unpaid_minutes = State()
    cancel_hours = State()
    summary_time = State()
    post_grace_minutes = State()


class GroupBuyForm(StatesGroup):
    product = State()
    price = State()
    team_size = State()
    team_minutes = State()
    ends_at = State()
    open_limit = State()
    join_limit = State()
    solo = State()
    min_units = State()
    tiers = State()
    member_limit = State()
    preview = State()


class GroupBuyEditForm(StatesGroup):
    value = State()


class CheckinSettingsForm(StatesGroup):
    """One step per check-in option, named after the option it sets (quiet_hours sets both ends)."""

    card_time = State()
    base_points = State()
    daily_increment = State()
    increment_cap_days = State()
    milestones = State()
    milestone_day = State()  # the streak day a coupon milestone is given at
    makeup_days = State()
    makeup_cost = State()
    makeups_per_month = State()
    purchase_points_per_unit = State()
    reminder_hour = State()
    points_expiry_months = State()
    quiet_hours = State()


class RewardForm(StatesGroup):
    title = State()
    cost = State()
    kind = State()
    value = State()
    cap = State()
    min_spend = State()
    valid_days = State()
    preview = State()


class PointsAdjustForm(StatesGroup):
    member = State()
    delta = State()
    note = State()
    confirm = State()


class InviteSettingsForm(StatesGroup):
    """One step per numeric invitation option, named after it; `level_points` sets a level's points."""

    qualify_days = State()
    burst_joins = State()
    burst_minutes = State()
    leave_rate_percent = State()
    leave_rate_min_invites = State()
    level_points = State()


class InviteCouponForm(StatesGroup):
    kind = State()
    value = State()
    cap = State()
    min_spend = State()
    valid_days = State()
    preview = State()


class InviteChainForm(StatesGroup):
    member = State()
