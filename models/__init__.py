"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models.audit import AuditLog
from models.community import REQUIRED_RIGHTS, Community, PickupPoint
from models.member import Member, MemberStatus
from models.user import User

__all__ = ["AuditLog", "Community", "Member", "MemberStatus", "PickupPoint", "REQUIRED_RIGHTS", "User"]
