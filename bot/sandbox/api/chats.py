"""Chat methods: chat info, members, leaving, invite links, join requests, bans.

Administrative methods check the bot's own administrator rights, because
that is the most common way a bot that works in a test group fails in a
real one.
"""

from __future__ import annotations

import secrets

from ..errors import bad_request
from ..serialize import chat_full_json, invite_link_json, member_json, user_json
from ..state import ChatMemberState, SimChat, SimInviteLink, SimUser, invite_link_name, restriction
from .registry import method

NO_LINK_RIGHTS = "not enough rights to manage chat invite links"
NO_RESTRICT_RIGHTS = "not enough rights to restrict/unrestrict chat member"
PRIVATE_STATUS = "chat member status can't be changed in private chats"


def target_user(emu, p) -> SimUser:
    user = emu.user(p.get_int("user_id", required=True))
    if user is None:
        raise bad_request("user not found")
    return user


def group_chat(emu, p, private_error: str) -> SimChat:
    chat = emu.resolve_chat(p.chat_id())
    if chat.type == "private":
        raise bad_request(private_error)
    emu.check_access(chat)
    return chat


@method("getChat")
def get_chat(emu, p):
    chat = emu.resolve_chat(p.chat_id())
    if chat.type == "private":
        if not chat.user.started_bot:
            raise bad_request("chat not found")
    else:
        emu.check_access(chat)
    return chat_full_json(chat, emu.latest_pinned(chat))


@method("getChatMember")
def get_chat_member(emu, p):
    chat = emu.resolve_chat(p.chat_id())
    user = target_user(emu, p)
    if chat.type == "private":
        if user is not chat.user and user is not emu.me:
            raise bad_request("user not found")
        return member_json(user, ChatMemberState("member"))
    emu.check_access(chat)
    return member_json(user, chat.member(user.id))


@method("getChatAdministrators")
def get_chat_administrators(emu, p):
    chat = group_chat(emu, p, "there are no administrators in the private chat")
    return [
        member_json(emu.user(user_id), state)
        for user_id, state in chat.members.items()
        if state.status in ("creator", "administrator")
    ]


@method("getChatMemberCount", "getChatMembersCount")
def get_chat_member_count(emu, p):
    chat = emu.resolve_chat(p.chat_id())
    if chat.type == "private":
        return 2
    emu.check_access(chat)
    return sum(state.is_member for state in chat.members.values())


@method("leaveChat")
def leave_chat(emu, p):
    chat = group_chat(emu, p, PRIVATE_STATUS)
    emu.change_member(chat, emu.me, ChatMemberState("left"), emu.me)
    emu.service_message(chat, emu.me, {"left_chat_member": user_json(emu.me)})
    emu.transcript.add("notice", chat.label, "bot", "bot left the group")
    return True


def inviting_chat(emu, p) -> SimChat:
    chat = group_chat(emu, p, "can't invite members to a private chat")
    emu.require_right(chat, "can_invite_users", NO_LINK_RIGHTS)
    return chat


def apply_link_options(emu, p, link: SimInviteLink) -> None:
    """Set the editable fields; like Telegram, omitted options are cleared. A name longer than 32
    characters is no error: Telegram keeps its first 32."""
    name = invite_link_name(p.get_str("name"))
    expire_date = p.get_int("expire_date")
    member_limit = p.get_int("member_limit")
    creates_join_request = p.get_bool("creates_join_request")
    if expire_date and expire_date <= emu.now():
        raise bad_request("EXPIRE_DATE_INVALID")
    if member_limit is not None and not 1 <= member_limit <= 99999:
        raise bad_request("USAGE_LIMIT_INVALID")
    if creates_join_request and member_limit:
        raise bad_request("member limit can't be specified for links requiring administrator approval")
    link.name = name
    link.expire_date = expire_date or None
    link.member_limit = member_limit or None
    link.creates_join_request = creates_join_request


def bot_link(emu, chat: SimChat, p) -> SimInviteLink:
    link = chat.invite_links.get(p.get_str("invite_link", required=True))
    if link is None or link.is_revoked or link.creator_id != emu.me.id:
        raise bad_request("INVITE_HASH_EXPIRED")
    return link


def new_link(emu, chat: SimChat, *, primary: bool = False) -> SimInviteLink:
    """A fresh, not yet stored link with Telegram's `https://t.me/+<hash>` shape."""
    return SimInviteLink(f"https://t.me/+{secrets.token_urlsafe(12)}", chat.id, emu.me.id, is_primary=primary)


@method("createChatInviteLink")
def create_chat_invite_link(emu, p):
    chat = inviting_chat(emu, p)
    link = new_link(emu, chat)
    apply_link_options(emu, p, link)
    chat.invite_links[link.link] = link
    return invite_link_json(link, emu.me)


@method("editChatInviteLink")
def edit_chat_invite_link(emu, p):
    chat = inviting_chat(emu, p)
    link = bot_link(emu, chat, p)
    apply_link_options(emu, p, link)
    return invite_link_json(link, emu.me)


@method("revokeChatInviteLink")
def revoke_chat_invite_link(emu, p):
    chat = inviting_chat(emu, p)
    link = bot_link(emu, chat, p)
    link.is_revoked = True
    return invite_link_json(link, emu.me)


@method("exportChatInviteLink")
def export_chat_invite_link(emu, p):
    """Generate a new primary link, revoking the previous one."""
    chat = inviting_chat(emu, p)
    for link in chat.invite_links.values():
        if link.is_primary:
            link.is_revoked = True
    link = new_link(emu, chat, primary=True)
    chat.invite_links[link.link] = link
    return link.link


def pending_requester(emu, p) -> tuple[SimChat, SimUser]:
    chat = inviting_chat(emu, p)
    user = target_user(emu, p)
    if user.id not in chat.join_requests:
        raise bad_request("HIDE_REQUESTER_MISSING")
    return chat, user


@method("approveChatJoinRequest")
def approve_chat_join_request(emu, p):
    chat, user = pending_requester(emu, p)
    link = chat.join_requests.pop(user.id)
    if chat.member(user.id).is_member:
        raise bad_request("USER_ALREADY_PARTICIPANT")
    emu.admit(chat, user, emu.me, invite_link=link, via_join_request=True)
    return True


@method("declineChatJoinRequest")
def decline_chat_join_request(emu, p):
    chat, user = pending_requester(emu, p)
    del chat.join_requests[user.id]
    emu.transcript.add("notice", chat.label, "bot", f"bot declined {user.full_name}'s join request")
    emu.touch()
    return True


def restrictable_member(emu, p) -> tuple[SimChat, SimUser, ChatMemberState]:
    chat = group_chat(emu, p, PRIVATE_STATUS)
    emu.require_right(chat, "can_restrict_members", NO_RESTRICT_RIGHTS)
    user = target_user(emu, p)
    state = chat.member(user.id)
    if user is emu.me:
        raise bad_request("can't restrict self")
    if state.status == "creator":
        raise bad_request("can't remove chat owner")
    if state.status == "administrator":
        raise bad_request("user is an administrator of the chat")
    return chat, user, state


def remove_member(emu, chat: SimChat, user: SimUser, new: ChatMemberState) -> None:
    was_member = chat.member(user.id).is_member
    emu.change_member(chat, user, new, emu.me)
    if was_member:
        emu.service_message(chat, emu.me, {"left_chat_member": user_json(user)})
        emu.transcript.add("notice", chat.label, "bot", f"bot removed {user.full_name}")


@method("banChatMember", "kickChatMember")
def ban_chat_member(emu, p):
    chat, user, _state = restrictable_member(emu, p)
    remove_member(emu, chat, user, ChatMemberState("kicked", until_date=p.get_int("until_date") or 0))
    return True


@method("unbanChatMember")
def unban_chat_member(emu, p):
    """Like Telegram, unbanning a current member removes them unless only_if_banned."""
    chat, user, state = restrictable_member(emu, p)
    if state.status == "kicked":
        emu.change_member(chat, user, ChatMemberState("left"), emu.me)
    elif state.is_member and not p.get_bool("only_if_banned"):
        remove_member(emu, chat, user, ChatMemberState("left"))
    return True


@method("restrictChatMember")
def restrict_chat_member(emu, p):
    chat, user, state = restrictable_member(emu, p)
    permissions = p.get_json("permissions")
    if not isinstance(permissions, dict):
        raise bad_request("can't parse permissions JSON object")
    if chat.type != "supergroup":
        raise bad_request("method is available only for supergroups")
    emu.change_member(chat, user, restriction(state, permissions, p.get_int("until_date") or 0), emu.me)
    return True
