"""bot.services.users on a real database."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.core.db import WriteCounter
from bot.services import users
from bot.services.errors import DomainError
from bot.services.users import Profile
from models import AuditLog, Member, MemberStatus, User

ANN = Profile(id=1001, first_name="Ann", last_name="Lee", username="ann", language_code="en")


async def _user(fresh, user_id: int) -> User | None:
    async with fresh() as s:
        return await s.get(User, user_id)


async def test_upsert_creates_the_user(session, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()

    user = await _user(fresh, ANN.id)
    assert (user.first_name, user.last_name, user.username, user.language_code) == ("Ann", "Lee", "ann", "en")
    assert user.created_at == user.updated_at == t0
    assert (user.locale, user.can_dm, user.marketing_opt_out, user.erased) == (None, False, False, False)


async def test_upsert_truncates_long_names_and_stores_empty_last_name_as_null(session, fresh, t0):
    await users.upsert_user(session, Profile(id=7, first_name="x" * 300, last_name=""), now=t0)
    await session.commit()

    user = await _user(fresh, 7)
    assert user.first_name == "x" * 128
    assert user.last_name is None


async def test_upsert_refreshes_only_changed_fields(session, engine, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()
    await users.set_locale(session, user_id=ANN.id, locale="zh_Hans", now=t0)
    await users.set_can_dm(session, user_id=ANN.id, can_dm=True, now=t0)

    writes = WriteCounter(engine)
    await users.upsert_user(session, ANN, now=t0 + timedelta(minutes=1))
    await session.commit()
    assert writes.count == 0, "an unchanged profile must not be written"
    assert (await _user(fresh, ANN.id)).updated_at == t0

    t2 = t0 + timedelta(minutes=2)
    await users.upsert_user(session, Profile(id=ANN.id, first_name="Ann", last_name="Lee", username="ann_new",
                                             language_code="en"), now=t2)
    await session.commit()
    assert writes.count == 1

    user = await _user(fresh, ANN.id)
    assert user.username == "ann_new"
    assert (user.first_name, user.last_name, user.language_code) == ("Ann", "Lee", "en")
    assert user.updated_at == t2 and user.created_at == t0
    # What the user chose through the bot is not Telegram's to overwrite.
    assert (user.locale, user.can_dm) == ("zh_Hans", True)


async def test_set_locale_accepts_known_and_rejects_unknown(session, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()

    await users.set_locale(session, user_id=ANN.id, locale="zh_Hans", now=t0 + timedelta(minutes=1))
    user = await _user(fresh, ANN.id)
    assert user.locale == "zh_Hans" and user.updated_at == t0 + timedelta(minutes=1)

    with pytest.raises(DomainError) as exc:
        await users.set_locale(session, user_id=ANN.id, locale="fr", now=t0 + timedelta(minutes=2))
    assert exc.value.code == "unknown_locale"
    assert exc.value.params == {"locale": "fr"}
    assert (await _user(fresh, ANN.id)).locale == "zh_Hans"


async def test_set_can_dm_toggles_and_skips_no_op(session, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()

    t1 = t0 + timedelta(minutes=1)
    await users.set_can_dm(session, user_id=ANN.id, can_dm=True, now=t1)
    user = await _user(fresh, ANN.id)
    assert user.can_dm is True and user.updated_at == t1

    await users.set_can_dm(session, user_id=ANN.id, can_dm=True, now=t1 + timedelta(minutes=1))
    assert (await _user(fresh, ANN.id)).updated_at == t1, "setting the same value is not a change"

    await users.set_can_dm(session, user_id=ANN.id, can_dm=False, now=t1 + timedelta(minutes=2))
    assert (await _user(fresh, ANN.id)).can_dm is False


async def test_marketing_opt_out_and_back_in(session, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()

    await users.set_marketing_opt_out(session, user_id=ANN.id, opt_out=True, now=t0)
    assert (await _user(fresh, ANN.id)).marketing_opt_out is True
    await users.set_marketing_opt_out(session, user_id=ANN.id, opt_out=False, now=t0)
    assert (await _user(fresh, ANN.id)).marketing_opt_out is False


async def _two_communities_with_ann(session, add_community, t0):
    """Ann leads group A and was invited by Bob into group B, which she has since left."""
    a = await add_community(-100, title="Group A")
    b = await add_community(-200, title="Group B")
    await users.upsert_user(session, ANN, now=t0)
    await users.upsert_user(session, Profile(id=2002, first_name="Bob"), now=t0)
    await users.upsert_user(session, Profile(id=3003, first_name="Cat"), now=t0)
    session.add_all([
        Member(community_id=a.id, user_id=ANN.id, is_leader=True, joined_at=t0, message_count=5,
               last_active_at=t0 + timedelta(hours=1)),
        Member(community_id=b.id, user_id=ANN.id, status=MemberStatus.LEFT, joined_at=t0,
               left_at=t0 + timedelta(days=1), invited_by=2002, invite_depth=1),
        Member(community_id=b.id, user_id=2002, joined_at=t0),
        # Ann brought Cat into both groups.
        Member(community_id=a.id, user_id=3003, joined_at=t0, invited_by=ANN.id, invite_depth=1),
        Member(community_id=b.id, user_id=3003, joined_at=t0, invited_by=ANN.id, invite_depth=2),
    ])
    await session.commit()
    return a, b


async def test_export_data_contains_profile_and_memberships(session, add_community, t0):
    a, b = await _two_communities_with_ann(session, add_community, t0)
    await users.set_locale(session, user_id=ANN.id, locale="zh_Hans", now=t0)
    await users.set_can_dm(session, user_id=ANN.id, can_dm=True, now=t0)

    data = await users.export_data(session, user_id=ANN.id)

    json.dumps(data)  # JSON-ready
    assert data["user"] == {
        "id": ANN.id, "first_name": "Ann", "last_name": "Lee", "username": "ann", "telegram_language": "en",
        "chosen_language": "zh_Hans", "can_receive_private_messages": True, "marketing_opt_out": False,
        "first_seen": t0.isoformat(), "earlier_profile_erased_at": None,
    }
    by_chat = {m["chat_id"]: m for m in data["memberships"]}
    assert set(by_chat) == {-100, -200}
    assert by_chat[-100] == {
        "community": "Group A", "chat_id": -100, "status": "member", "leader": True,
        "joined_at": t0.isoformat(), "left_at": None, "last_active_at": (t0 + timedelta(hours=1)).isoformat(),
        "messages_counted": 5, "invited_by": None,
    }
    assert by_chat[-200]["status"] == "left"
    assert by_chat[-200]["left_at"] == (t0 + timedelta(days=1)).isoformat()
    assert by_chat[-200]["invited_by"] == 2002
    assert by_chat[-200]["leader"] is False


async def test_export_data_unknown_user(session):
    with pytest.raises(DomainError) as exc:
        await users.export_data(session, user_id=404)
    assert exc.value.code == "unknown_user"


async def test_forget_erases_identity_and_memberships_but_keeps_the_row(session, fresh, add_community, t0):
    a, b = await _two_communities_with_ann(session, add_community, t0)
    await users.set_locale(session, user_id=ANN.id, locale="zh_Hans", now=t0)
    t1 = t0 + timedelta(days=2)

    await users.forget(session, user_id=ANN.id, now=t1)

    async with fresh() as s:
        user = await s.get(User, ANN.id)
        assert user is not None, "the row stays as an anonymous key"
        assert (user.first_name, user.last_name, user.username, user.language_code, user.locale) == ("", None, None, None, None)
        assert user.erased is True and user.marketing_opt_out is True and user.updated_at == t1
        # When they first came is theirs too; when they were erased is what the leader's books need.
        assert (user.erased_at, user.created_at) == (t1, t1)

        members = list(await s.exec(select(Member).order_by(Member.community_id, Member.user_id)))
        assert ANN.id not in {m.user_id for m in members}
        # Others keep their memberships; only the link to Ann goes.
        assert [(m.community_id, m.user_id, m.invited_by) for m in members] == [
            (a.id, 3003, None), (b.id, 2002, None), (b.id, 3003, None),
        ]
        bob = await s.get(User, 2002)
        assert bob.first_name == "Bob" and not bob.erased

        entries = list(await s.exec(select(AuditLog).where(AuditLog.action == "user.erased")))
    assert len(entries) == 1
    entry = entries[0]
    assert entry.community_id is None and entry.actor_id is None and entry.created_at == t1
    text = json.dumps(entry.details)
    for identity in (str(ANN.id), "Ann", "Lee", "ann"):
        assert identity not in text


async def test_forget_unknown_user(session):
    with pytest.raises(DomainError) as exc:
        await users.forget(session, user_id=404, now=None)
    assert exc.value.code == "unknown_user"


async def test_erased_user_who_comes_back_is_un_erased(session, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()
    await users.forget(session, user_id=ANN.id, now=t0 + timedelta(days=1))

    t2 = t0 + timedelta(days=2)
    await users.upsert_user(session, ANN, now=t2)
    await session.commit()

    user = await _user(fresh, ANN.id)
    assert user.erased is False
    assert (user.first_name, user.last_name, user.username, user.language_code) == ("Ann", "Lee", "ann", "en")
    assert user.updated_at == t2
    # The new profile names what Ann does from now on; what was recorded until the erasure stays nameless.
    assert user.erased_at == t0 + timedelta(days=1)
    assert user.hidden_at(t0 + timedelta(hours=12)) and user.hidden_at(t0 + timedelta(days=1))
    assert not user.hidden_at(t0 + timedelta(days=1, seconds=1))
    assert (await users.export_data(session, user_id=ANN.id))["user"]["earlier_profile_erased_at"] == (
        t0 + timedelta(days=1)).isoformat()


async def test_a_user_never_erased_hides_nothing_and_an_erased_one_hides_everything(session, fresh, t0):
    await users.upsert_user(session, ANN, now=t0)
    await session.commit()
    assert not (await _user(fresh, ANN.id)).hidden_at(t0)
    await users.forget(session, user_id=ANN.id, now=t0)
    erased = await _user(fresh, ANN.id)
    assert erased.hidden_at(t0 - timedelta(days=1)) and erased.hidden_at(t0 + timedelta(days=1))


async def test_erased_user_with_an_identical_profile_is_still_un_erased(session, fresh, t0):
    # An erased row holds first_name "" and no other fields: a profile equal to that changes nothing but the flag.
    bare = Profile(id=55, first_name="")
    await users.upsert_user(session, bare, now=t0)
    await session.commit()
    await users.forget(session, user_id=55, now=t0)
    await users.upsert_user(session, bare, now=t0 + timedelta(hours=1))
    await session.commit()

    user = await _user(fresh, 55)
    assert user.erased is False and user.updated_at == t0 + timedelta(hours=1)
