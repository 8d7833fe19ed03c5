"""Small builders shared by the tests: real images and multipart form posts."""

from __future__ import annotations

from io import BytesIO

from quart.datastructures import FileStorage

from appliance.catalog.pngdraw import product_picture

PNG = product_picture((200, 80, 120), size=16)


def file_field(
    data: bytes, filename: str = "picture.png", content_type: str = "image/png"
) -> FileStorage:
    return FileStorage(BytesIO(data), filename=filename, content_type=content_type)
