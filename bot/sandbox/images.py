"""What Telegram checks in an uploaded photo or document before it takes it.

Telegram decodes an uploaded photo: bytes that are no image fail, and a photo must be at most
10 MB, its width and height at most 10,000 pixels together, and neither side more than 20 times
the other. A document may be up to 50 MB. A photo given by URL or file_id is not checked (the
emulator fetches nothing) and gets a nominal size.
"""

from __future__ import annotations

import struct

from .errors import ApiError, bad_request
from .params import Upload

PHOTO_BYTES = 10 * 1024 * 1024
DOCUMENT_BYTES = 50 * 1024 * 1024
PHOTO_SIDES_SUM = 10_000
PHOTO_RATIO = 20


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, JPEG, GIF or WebP header; None when the bytes are none of them."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        # Start-of-frame markers carry the size; C4 (Huffman), C8 and CC (arithmetic) are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def check_upload(kind: str, upload: Upload) -> tuple[int, int] | None:
    """Refuse an upload as Telegram would; a photo's pixel size when it passes."""
    if kind == "document":
        if len(upload.data) > DOCUMENT_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        return None
    if len(upload.data) > PHOTO_BYTES:
        # The Bot API passes on the MTProto error for a photo over 10 MB.
        raise bad_request("PHOTO_SAVE_FILE_INVALID")
    size = image_size(upload.data)
    if size is None or 0 in size:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if width + height > PHOTO_SIDES_SUM or max(width, height) > PHOTO_RATIO * min(width, height):
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return size


def photo_sizes(size: tuple[int, int]) -> list[tuple[int, int]]:
    """The sizes Telegram stores for a photo: thumbnails up to 90, 320, 800 and 1280 pixels on the
    longer side, each only when the original is larger, then the original capped at 1280."""
    width, height = size
    longer = max(width, height)
    sizes = []
    for limit in (90, 320, 800, 1280):
        scale = min(1.0, limit / longer)
        sizes.append((max(1, round(width * scale)), max(1, round(height * scale))))
        if scale == 1.0:
            break
    return sizes
