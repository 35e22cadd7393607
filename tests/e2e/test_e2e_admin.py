"""The leader's shell: /admin, settings forms with refusals, Back and Cancel, pickup points, the
audit trail, and a leader who loses the role mid-form."""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape

from e2e_harness import E2E, Group, en, zh

from bot.sandbox import SimUser
from bot.services import settings as settings_service

NO_COMMUNITIES = "You do not lead any community yet. Add me to your group as an administrator, then send /admin again."
PICKER = "Choose a community to manage:"
TZ_PROMPT = ("Send the community's timezone as an IANA name, for example Asia/Shanghai or Europe/Berlin.\n"
             "Now: {value}")
TZ_BAD = "“{value}” is not a timezone I know. Send an IANA name such as Asia/Shanghai or Europe/Berlin."
CUR_PROMPT = "Send the currency as an ISO 4217 code, for example CNY, USD or EUR.\nNow: {value}"
ADD_PROMPT = "Send the name of the new pickup point (up to 64 characters)."
RENAME_PROMPT = "Send the new name for “{value}”."
CANCELLED = "Cancelled. Nothing was changed. Send /admin to open the menu again."
NOT_LEADER = "Only this community's leaders can do that."
FORM_BUTTONS = [["« Back", "✖ Cancel"]]


def settings_title(title: str) -> str:
    return en("<b>Settings · {title}</b>\nChoose what to change.", title=title).replace("<b>", "").replace("</b>", "")


def pickups_title(title: str) -> str:
    return en("<b>Pickup points · {title}</b>", title=title).replace("<b>", "").replace("</b>", "")


async def open_settings(e2e: E2E, leader: SimUser) -> None:
    await e2e.say(leader, "/admin")
    await e2e.press(leader, en("⚙️ Settings"))


async def open_pickups(e2e: E2E, leader: SimUser) -> None:
    await open_settings(e2e, leader)
    message = e2e.last_msg(leader)
    label = next(row[0] for row in message.buttons if row[0].startswith("📍"))
    await e2e.press(leader, label)


async def test_admin_for_a_member_without_communities(e2e: E2E, group: Group) -> None:
    bob = group.members[0]
    await e2e.say(bob, "/admin")
    assert e2e.last(bob) == en(NO_COMMUNITIES)
    assert e2e.last_msg(bob).buttons == []


async def test_admin_in_the_group_points_leaders_to_private_chat(e2e: E2E, group: Group) -> None:
    chat, alice, bob = group.chat, group.leader, group.members[0]
    await e2e.say(bob, "/admin", chat)
    assert e2e.last(chat) == en("Only this group's leaders can use /admin.")
    await e2e.say(alice, "/admin", chat)
    reply = e2e.last_msg(chat)
    assert reply.visible == en("The leader menu opens in a private chat with me.")
    assert reply.reply_markup["inline_keyboard"][0][0]["url"].endswith(f"?start=admin-{group.community_id}")


async def test_admin_with_one_community_opens_its_menu(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await e2e.say(alice, "/admin")
    menu = e2e.last_msg(alice)
    assert menu.visible == "Green Valley\n" + en("Timezone: {tz} · Currency: {cur} · Language: {lang}",
                                                 tz="UTC", cur="USD", lang="English")
    assert [en("⚙️ Settings")] in menu.buttons and [en("📜 Recent changes")] in menu.buttons
    assert [en("« All communities")] not in menu.buttons  # nothing to go back to


async def test_admin_with_two_communities_shows_a_picker(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await e2e.make_group("Hill Side", leader=alice, members=[])
    await e2e.say(alice, "/admin")
    assert e2e.last(alice) == en(PICKER)
    assert e2e.last_msg(alice).buttons == [["Green Valley"], ["Hill Side"]]
    await e2e.press(alice, "Hill Side")
    menu = e2e.last_msg(alice)
    assert menu.visible.splitlines()[0] == "Hill Side"
    assert menu.buttons[-1] == [en("« All communities")]
    await e2e.press(alice, en("« All communities"))
    assert e2e.last(alice) == en(PICKER)


async def test_owner_sees_every_community(e2e: E2E, group: Group) -> None:
    zoe = e2e.emu.add_user("Zoe")
    other = await e2e.make_group("Apple Street", leader=zoe, members=[])
    await e2e.act(lambda: e2e.emu.remove_bot(other.chat, by=zoe))
    owner = e2e.owner
    await e2e.say(owner, "/admin")
    assert e2e.last(owner) == en(PICKER)
    # Active communities first, then by title.
    assert e2e.last_msg(owner).buttons == [["Green Valley"], ["Apple Street " + en("(inactive)")]]
    await e2e.press(owner, "Green Valley")
    await e2e.press(owner, en("⚙️ Settings"))
    assert e2e.last(owner).startswith(settings_title("Green Valley"))
    # The owner leads nothing in Telegram; /help gives /admin its own owner's section.
    assert not await e2e.memberships(owner)
    await e2e.say(owner, "/help")
    help_lines = e2e.last(owner).splitlines()
    assert en("Commands for the bot's owner") in help_lines and f"/admin — {en('Manage your communities')}" in help_lines


async def test_timezone_refuses_bad_input_and_asks_again(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_settings(e2e, alice)
    assert e2e.last(alice).startswith(settings_title("Green Valley"))
    await e2e.press(alice, en("🕒 Timezone: {tz}", tz="UTC"))
    assert e2e.last(alice) == en(TZ_PROMPT, value="UTC")
    assert e2e.last_msg(alice).buttons == FORM_BUTTONS
    assert await e2e.fsm_state(alice) == "SettingsForm:timezone"

    for bad, echoed in (("Mars/Base", "Mars/Base"), ("x" * 200, "x" * 64), ("Asia/Shang hai!", "Asia/Shang hai!")):
        await e2e.say(alice, bad)
        assert e2e.last(alice) == en(TZ_BAD, value=echoed) + "\n\n" + en(TZ_PROMPT, value="UTC")
        assert e2e.last_msg(alice).buttons == FORM_BUTTONS
        assert await e2e.fsm_state(alice) == "SettingsForm:timezone"
    # Clients trim messages and never send empty ones; a whitespace-only text is the closest.
    await e2e.send_raw(alice, text="   ", html="   ")
    assert e2e.last(alice) == en(TZ_BAD, value="") + "\n\n" + en(TZ_PROMPT, value="UTC")
    await e2e.send_raw(alice, service={"location": {"latitude": 31.23, "longitude": 121.47}})
    assert e2e.last(alice) == en("Please answer with text.") + "\n\n" + en(TZ_PROMPT, value="UTC")
    assert await e2e.fsm_state(alice) == "SettingsForm:timezone"
    assert (await e2e.community_by_id(cid)).timezone == "UTC"
    assert await e2e.audit(cid, "settings.timezone") == []

    await e2e.say(alice, "asia/shanghai")
    reply = e2e.last(alice)
    assert reply.startswith(en("Timezone set to {value}.", value="Asia/Shanghai") + "\n\n" + settings_title("Green Valley"))
    assert [en("🕒 Timezone: {tz}", tz="Asia/Shanghai")] in e2e.last_msg(alice).buttons
    assert (await e2e.community_by_id(cid)).timezone == "Asia/Shanghai"
    [entry] = await e2e.audit(cid, "settings.timezone")
    assert entry.actor_id == alice.id and entry.details == {"from": "UTC", "to": "Asia/Shanghai"}
    assert await e2e.fsm_state(alice) is None


async def test_start_leaves_an_open_form(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_settings(e2e, alice)
    await e2e.press(alice, en("🕒 Timezone: {tz}", tz="UTC"))
    assert await e2e.fsm_state(alice) == "SettingsForm:timezone"

    await e2e.say(alice, "/start")
    assert e2e.last(alice).startswith("Hi Alice! I run the shop")
    assert await e2e.fsm_state(alice) is None
    await e2e.say(alice, "Asia/Tokyo")  # no longer an answer to the form
    assert (await e2e.community_by_id(cid)).timezone == "UTC"
    assert await e2e.audit(cid, "settings.timezone") == []


async def test_currency_form(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    await open_settings(e2e, alice)
    await e2e.press(alice, en("💱 Currency: {cur}", cur="USD"))
    assert e2e.last(alice) == en(CUR_PROMPT, value="USD")
    await e2e.say(alice, "12")
    assert e2e.last(alice) == (en("“{value}” is not a currency code. Send three letters such as CNY, USD or EUR.", value="12")
                               + "\n\n" + en(CUR_PROMPT, value="USD"))
    await e2e.say(alice, "XYZ")
    assert e2e.last(alice) == (en("{value} is not an ISO 4217 currency. Send a code such as CNY, USD or EUR.", value="XYZ")
                               + "\n\n" + en(CUR_PROMPT, value="USD"))
    assert (await e2e.community_by_id(cid)).currency == "USD"
    await e2e.say(alice, "cny")
    assert e2e.last(alice).startswith(en("Currency set to {value}.", value="CNY"))
    assert (await e2e.community_by_id(cid)).currency == "CNY"
    [entry] = await e2e.audit(cid, "settings.currency")
    assert entry.details == {"from": "USD", "to": "CNY"} and entry.actor_id == alice.id


async def test_community_language_becomes_the_groups_default(e2e: E2E, group: Group) -> None:
    alice, cid, chat = group.leader, group.community_id, group.chat
    await open_settings(e2e, alice)
    await e2e.press(alice, en("🌐 Language: {lang}", lang="English"))
    assert e2e.last(alice) == en("The community's language is used in the group and for members who have not chosen one.")
    assert e2e.last_msg(alice).buttons == [["✓ English"], ["简体中文"], [en("« Back")]]
    callback = await e2e.press(alice, "简体中文")
    assert e2e.answer(callback).text == en("Saved.")
    assert e2e.last(alice).startswith(settings_title("Green Valley"))  # Alice's own language stays English
    assert [en("🌐 Language: {lang}", lang="简体中文")] in e2e.last_msg(alice).buttons
    assert (await e2e.community_by_id(cid)).default_locale == "zh_Hans"
    [entry] = await e2e.audit(cid, "settings.default_locale")
    assert entry.details == {"from": "en", "to": "zh_Hans"}

    # A member whose Telegram app reports no language now gets Chinese in the group.
    hugo = e2e.emu.add_user("Hugo", language_code=None)
    await e2e.act(lambda: e2e.emu.join(chat, hugo))
    await e2e.say(hugo, "/help", chat)
    assert e2e.last(chat).splitlines()[0] == zh("Commands for members") != en("Commands for members")


async def test_pickup_points_add_refuse_rename_remove(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    name = "North <b>Gate</b> & Co"
    await open_pickups(e2e, alice)
    assert e2e.last(alice) == pickups_title("Green Valley") + "\n" + en("No pickup points yet.")
    await e2e.press(alice, en("➕ Add a pickup point"))
    assert e2e.last(alice) == en(ADD_PROMPT)
    assert await e2e.fsm_state(alice) == "SettingsForm:pickup_add"

    await e2e.say(alice, name)
    reply = e2e.last_msg(alice)
    assert reply.visible.startswith(en("Pickup point “{name}” added.", name=name))
    assert escape(name) in reply.html and name not in reply.html  # escaped on the wire, shown as typed
    assert [name] in reply.buttons
    [point] = await e2e.pickup_points(cid)
    assert point.name == name

    await e2e.press(alice, en("➕ Add a pickup point"))
    await e2e.say(alice, name)
    assert e2e.last(alice) == (en("There is already a pickup point called “{name}”. Send a different name.", name=name)
                               + "\n\n" + en(ADD_PROMPT))
    await e2e.say(alice, "y" * 65)
    assert e2e.last(alice) == (en("That name has {length} characters; the limit is {max}. Send a shorter one.",
                                  length=65, max=64) + "\n\n" + en(ADD_PROMPT))
    assert await e2e.fsm_state(alice) == "SettingsForm:pickup_add"
    assert len(await e2e.pickup_points(cid)) == 1

    await e2e.press(alice, en("« Back"))
    assert e2e.last(alice).startswith(pickups_title("Green Valley"))
    await e2e.press(alice, name)
    assert e2e.last(alice) == en("Pickup point “{name}”", name=name)
    await e2e.press(alice, en("✏️ Rename"))
    assert e2e.last(alice) == en(RENAME_PROMPT, value=name)
    await e2e.say(alice, "  South   Gate ")
    assert e2e.last(alice).startswith(en("Renamed to “{name}”.", name="South Gate"))
    [point] = await e2e.pickup_points(cid)
    assert point.name == "South Gate"

    await e2e.press(alice, "South Gate")
    await e2e.press(alice, en("🗑 Remove"))
    assert e2e.last(alice) == en("Remove the pickup point “{name}”? Orders that already name it keep it.", name="South Gate")
    callback = await e2e.press(alice, en("Yes, remove it"))
    assert e2e.answer(callback).text == en("Removed.")
    assert e2e.last(alice) == pickups_title("Green Valley") + "\n" + en("No pickup points yet.")
    assert await e2e.pickup_points(cid) == []
    [removed] = await e2e.pickup_points(cid, include_removed=True)
    assert removed.removed_at is not None
    assert [a.action for a in await e2e.audit(cid) if a.action.startswith("pickup.")] == [
        "pickup.add", "pickup.rename", "pickup.remove"]


async def _press_starting(e2e: E2E, user: SimUser, prefix: str) -> None:
    label = next(b for row in e2e.last_msg(user).buttons for b in row if b.startswith(prefix))
    await e2e.press(user, label)


async def test_back_and_cancel_on_every_form_step(e2e: E2E, group: Group) -> None:
    alice, cid = group.leader, group.community_id
    async with e2e.db() as session:
        await settings_service.add_pickup_point(session, community_id=cid, actor_id=alice.id, raw_name="Depot",
                                                now=datetime.now(timezone.utc))
    audit_before = len(await e2e.audit(cid))
    settings_view, pickups_view = settings_title("Green Valley"), pickups_title("Green Valley")

    async def step(opener: list[str], state: str) -> None:
        for prefix in opener:
            await _press_starting(e2e, alice, prefix)
        assert await e2e.fsm_state(alice) == f"SettingsForm:{state}"

    timezone_step, currency_step = (["🕒"], "timezone"), (["💱"], "currency")
    add_step, rename_step = (["➕"], "pickup_add"), (["Depot", "✏️"], "pickup_rename")

    # Back, from each step, to the view that opened it.
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("⚙️ Settings"))
    for opener, state, back_to in (timezone_step + (settings_view,), currency_step + (settings_view,)):
        await step(opener, state)
        await e2e.press(alice, en("« Back"))
        assert e2e.last(alice).startswith(back_to), state
        assert await e2e.fsm_state(alice) is None, state
    await _press_starting(e2e, alice, "📍")
    for opener, state, back_to in (add_step + (pickups_view,), rename_step + (pickups_view,)):
        await step(opener, state)
        await e2e.press(alice, en("« Back"))
        assert e2e.last(alice).startswith(back_to), state
        assert await e2e.fsm_state(alice) is None, state

    # Cancel on each step: nothing changes, the form is closed.
    for path, (opener, state) in ((["📍"], add_step), (["📍"], rename_step), ([], timezone_step), ([], currency_step)):
        await e2e.say(alice, "/admin")
        await e2e.press(alice, en("⚙️ Settings"))
        await step(path + opener, state)
        await e2e.press(alice, en("✖ Cancel"))
        assert e2e.last(alice) == en(CANCELLED), state
        assert await e2e.fsm_state(alice) is None, state
    await e2e.say(alice, "Europe/Berlin")  # the form is closed: this is just text now
    assert e2e.last(alice) == en("I did not understand that. Send /help to see what I can do.")

    # /cancel in the middle of a form.
    await e2e.say(alice, "/admin")
    await e2e.press(alice, en("⚙️ Settings"))
    await step(*timezone_step)
    await e2e.say(alice, "/cancel")
    assert e2e.last(alice) == en(CANCELLED)
    assert await e2e.fsm_state(alice) is None

    community = await e2e.community_by_id(cid)
    assert (community.timezone, community.currency) == ("UTC", "USD")
    assert [p.name for p in await e2e.pickup_points(cid)] == ["Depot"]
    assert len(await e2e.audit(cid)) == audit_before


async def test_recent_changes_lists_the_audit_trail(e2e: E2E, group: Group) -> None:
    alice = group.leader
    await open_settings(e2e, alice)
    await e2e.press(alice, en("🕒 Timezone: {tz}", tz="UTC"))
    await e2e.say(alice, "Asia/Shanghai")
    await e2e.press(alice, en("📍 Pickup points ({n})", n=0))
    await e2e.press(alice, en("➕ Add a pickup point"))
    await e2e.say(alice, "Gate <7> & Co")
    await e2e.press(alice, en("« Back"))  # pickups → settings
    await e2e.press(alice, en("« Back"))  # settings → menu
    await e2e.press(alice, en("📜 Recent changes"))
    lines = e2e.last(alice).splitlines()
    assert lines[0] == en("<b>Recent changes</b> (times in {tz})", tz="Asia/Shanghai").replace("<b>", "").replace("</b>", "")
    assert len(lines) == 4  # newest first: the pickup point, the timezone, the bot being added
    assert lines[1].endswith(f"· {alice.id} · pickup.add " + "id: 1, name: Gate <7> & Co")
    assert lines[2].endswith(f"· {alice.id} · settings.timezone from: UTC, to: Asia/Shanghai")
    assert "· " + en("Telegram") + " · bot.added" in lines[3]
    assert e2e.last_msg(alice).buttons == [[en("« Back")]]


async def test_leader_demoted_mid_form_cannot_finish_it(e2e: E2E, group: Group) -> None:
    emu, chat, alice, cid = e2e.emu, group.chat, group.leader, group.community_id
    bob = group.members[0]
    await e2e.act(lambda: emu.promote(chat, bob, by=alice))
    await open_settings(e2e, bob)
    await e2e.press(bob, en("🕒 Timezone: {tz}", tz="UTC"))
    assert await e2e.fsm_state(bob) == "SettingsForm:timezone"

    await e2e.act(lambda: emu.demote(chat, bob, by=alice))
    await e2e.say(bob, "Asia/Tokyo")
    assert e2e.last(bob) == en(NOT_LEADER)
    assert (await e2e.community_by_id(cid)).timezone == "UTC"
    assert await e2e.audit(cid, "settings.timezone") == []
    assert await e2e.fsm_state(bob) is None
    # The menu he still has on screen refuses too.
    await e2e.say(bob, "/admin")
    assert e2e.last(bob) == en(NO_COMMUNITIES)
