"""Photos, documents and editMessageMedia through the emulator, with Telegram's limits."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramEntityTooLarge
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
)
from PIL import Image

from bot.sandbox import TelegramEmulator

pytestmark = pytest.mark.asyncio


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, "PNG")
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its (tiny) pixel data does not hold: Telegram reads the header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def started(emu: TelegramEmulator):
    user = emu.add_user("Alice")
    emu.send(user, None, "/start")
    return user


async def test_photo_upload_keeps_its_size_and_caption_limit(emu, bot):
    alice = started(emu)
    sent = await bot.send_photo(alice.id, BufferedInputFile(png(1000, 700), "chart.png"), caption="<b>Week</b>",
                                parse_mode="HTML")
    assert sent.caption == "Week"
    assert (sent.photo[-1].width, sent.photo[-1].height) == (1000, 700)
    assert [max(p.width, p.height) for p in sent.photo] == [90, 320, 800, 1000]
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.send_photo(alice.id, BufferedInputFile(png(10, 10), "c.png"), caption="c" * 1025)
    ok = await bot.send_photo(alice.id, BufferedInputFile(png(10, 10), "c.png"), caption="<b>" + "c" * 1024 + "</b>",
                              parse_mode="HTML")
    assert len(ok.caption) == 1024


@pytest.mark.parametrize(("data", "error"), [
    (b"\x89PNG....", "IMAGE_PROCESS_FAILED"),
    (b"name,qty\n", "IMAGE_PROCESS_FAILED"),
    (png_header(6000, 4001), "PHOTO_INVALID_DIMENSIONS"),
    (png_header(2100, 100), "PHOTO_INVALID_DIMENSIONS"),
    (png_header(10, 10) + b"\0" * (10 * 1024 * 1024), "PHOTO_SAVE_FILE_INVALID"),
])
async def test_photo_uploads_telegram_refuses(emu, bot, data, error):
    alice = started(emu)
    with pytest.raises(TelegramBadRequest, match=error):
        await bot.send_photo(alice.id, BufferedInputFile(data, "p.png"))
    assert emu.bot_messages(alice) == []


async def test_photo_at_the_limits_passes(emu, bot):
    alice = started(emu)
    await bot.send_photo(alice.id, BufferedInputFile(png_header(5000, 5000), "square.png"))
    await bot.send_photo(alice.id, BufferedInputFile(png_header(2000, 100), "strip.png"))
    assert len(emu.bot_messages(alice)) == 2


async def test_document_over_50_mb_is_too_large(emu, bot):
    alice = started(emu)
    with pytest.raises(TelegramEntityTooLarge):
        await bot.send_document(alice.id, BufferedInputFile(b"x" * (50 * 1024 * 1024 + 1), "big.csv"))


async def test_edit_message_media_replaces_photo_caption_and_keyboard(emu, bot):
    alice = started(emu)
    first = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Next", callback_data="n")]])
    sent = await bot.send_photo(alice.id, BufferedInputFile(png(100, 70), "a.png"), caption="one", reply_markup=first)
    second = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="Back", callback_data="b")]])
    edited = await bot.edit_message_media(
        media=InputMediaPhoto(media=BufferedInputFile(png(200, 140), "b.png"), caption="<i>two</i>", parse_mode="HTML"),
        chat_id=alice.id, message_id=sent.message_id, reply_markup=second)
    assert edited.message_id == sent.message_id and edited.caption == "two"
    assert edited.photo[-1].file_id != sent.photo[-1].file_id and edited.photo[-1].width == 200
    msg = emu.bot_messages(alice)[-1]
    assert msg.caption == "two" and msg.edited == 1 and msg.reply_markup["inline_keyboard"][0][0]["text"] == "Back"
    as_doc = await bot.edit_message_media(
        media=InputMediaDocument(media=BufferedInputFile(b"a,b\n", "x.csv")), chat_id=alice.id,
        message_id=sent.message_id)
    assert as_doc.document.file_name == "x.csv" and as_doc.photo is None and as_doc.caption is None


async def test_edit_message_media_refusals(emu, bot):
    alice = started(emu)
    text = await bot.send_message(alice.id, "menu")
    with pytest.raises(TelegramBadRequest, match="there is no media in the message to edit"):
        await bot.edit_message_media(media=InputMediaPhoto(media=BufferedInputFile(png(10, 10), "a.png")),
                                     chat_id=alice.id, message_id=text.message_id)
    photo = await bot.send_photo(alice.id, BufferedInputFile(png(10, 10), "a.png"), caption="same")
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_media(media=InputMediaPhoto(media=photo.photo[-1].file_id, caption="same"),
                                     chat_id=alice.id, message_id=photo.message_id)
    with pytest.raises(TelegramBadRequest, match="message caption is too long"):
        await bot.edit_message_media(media=InputMediaPhoto(media=photo.photo[-1].file_id, caption="c" * 1025),
                                     chat_id=alice.id, message_id=photo.message_id)
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.edit_message_media(media=InputMediaPhoto(media=BufferedInputFile(b"nope", "a.png")),
                                     chat_id=alice.id, message_id=photo.message_id)
    assert emu.bot_messages(alice)[-1].caption == "same"
