"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.activity_day import ActivityDay
from models.audit import AuditLog
from models.campaign import Arm, Campaign, CampaignKind, CampaignRun, CampaignSend, RunStatus, SendStatus
from models.checkin import CheckIn, CheckInKind
from models.checkin_card import CheckinCard, CheckinChat, CheckinNotice
from models.community import REQUIRED_RIGHTS, Community, PickupPoint
from models.groupbuy import GroupBuy, GroupBuyKind, GroupBuyStatus, GroupBuyTeam, TeamStatus
from models.invite import InviteCode, InviteIntent, InviteLink, Referral, ReferralFlag, ReferralState, Via
from models.job_mark import JobMark
from models.member import Member, MemberStatus
from models.membership_event import MembershipChange, MembershipEvent
from models.outbox import OutboxMessage
from models.points import PointsAccount, PointsEntry, PointsReason, PointsReward
from models.shop import (
    Coupon,
    CouponKind,
    CouponRedemption,
    Order,
    OrderStatus,
    PaymentMethod,
    PostStatus,
    Product,
    ProductPost,
    ProductStatus,
)
from models.stats import CommunityHour, FunnelDay, FunnelStep
from models.user import User

__all__ = [
    "AuditLog", "Community", "Coupon", "CouponKind", "CouponRedemption", "GroupBuy", "GroupBuyKind", "GroupBuyStatus",
    "GroupBuyTeam", "JobMark", "Member", "MemberStatus", "Order",
    "OrderStatus", "PaymentMethod", "PickupPoint", "PostStatus", "Product", "ProductPost", "ProductStatus",
    "REQUIRED_RIGHTS", "TeamStatus", "User",
    "CheckIn", "CheckInKind", "PointsAccount", "PointsEntry", "PointsReason", "PointsReward",
    "OutboxMessage",
    "CheckinCard", "CheckinChat", "CheckinNotice",
    "ActivityDay", "MembershipChange", "MembershipEvent",
    "Arm", "Campaign", "CampaignKind", "CampaignRun", "CampaignSend", "RunStatus", "SendStatus",
    "CommunityHour", "FunnelDay", "FunnelStep",
    "InviteCode", "InviteIntent", "InviteLink", "Referral", "ReferralFlag", "ReferralState", "Via",
]
