"""Image uploads: a pixel limit read from the header, and a resized copy for the viewer site
(issue 12 item 13), with real generated images."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction

import av
import pytest
from quart.testing import QuartClient

from appliance.catalog import products
from appliance.catalog.pngdraw import product_picture
from appliance.services import Services
from appliance.storage.uploads import VIEWER_SIDE, BadUpload, UploadStore, image_size
from tests.test_products import post_product


def png_header(width: int, height: int) -> bytes:
    """A PNG claiming width x height: signature, IHDR, one tiny IDAT, IEND. The 389 KB
    file of the report compressed its blank rows; the header alone says the same."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, an APP0 segment, then a baseline SOF0 with the given size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\0"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def webp_vp8x(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0"
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def encoded(codec: str, width: int, height: int, pix_fmt: str) -> bytes:
    """A real image of that size, encoded by PyAV (JPEG or WebP)."""
    frame = av.VideoFrame(width, height, "rgb24").reformat(format=pix_fmt)
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt  # type: ignore[attr-defined]
    encoder.time_base = Fraction(1, 25)
    packets = [*encoder.encode(frame), *encoder.encode(None)]  # type: ignore[attr-defined]
    return b"".join(bytes(p) for p in packets)


def decoded_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data), "r") as container:
        frame = next(container.decode(video=0))
    return frame.width, frame.height


def test_sizes_are_read_from_headers_of_every_accepted_format() -> None:
    assert image_size(png_header(20000, 20000), "png") == (20000, 20000)
    assert image_size(jpeg_header(65535, 40000), "jpg") == (65535, 40000)
    assert image_size(webp_vp8x(16384, 16384), "webp") == (16384, 16384)
    assert image_size(product_picture((1, 2, 3), size=300, height=200), "png") == (300, 200)
    assert image_size(encoded("mjpeg", 640, 480, "yuvj420p"), "jpg") == (640, 480)
    assert image_size(encoded("libwebp", 320, 240, "yuv420p"), "webp") == (320, 240)
    assert image_size(b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "png") is None  # no IHDR
    assert image_size(b"\xff\xd8\xff\xd9", "jpg") is None  # no frame


@pytest.mark.parametrize(
    "data",
    [png_header(20000, 20000), jpeg_header(10000, 5000), webp_vp8x(8000, 8000)],
    ids=["png", "jpeg", "webp"],
)
def test_too_many_pixels_are_refused_before_decoding(data: bytes, tmp_path) -> None:
    store = UploadStore(tmp_path, 5_000_000, 40_000_000)
    assert len(data) < 400
    with pytest.raises(BadUpload) as info:
        store.check(data)
    assert info.value.reason == "too_many_pixels"


async def test_the_huge_png_of_the_report_gets_a_clear_form_error(
    client: QuartClient, services: Services, admin: str
) -> None:
    r = await post_product(client, admin, image=png_header(20000, 20000))
    assert r.status_code == 400
    page = await r.get_data(as_text=True)
    assert "Images must be at most 40 megapixels" in page
    assert await products.list_products(services.db) == []
    directory = services.uploads.directory
    assert not directory.exists() or not any(directory.iterdir())


@pytest.mark.parametrize(
    ("image", "copy_ext"),
    [
        (product_picture((200, 80, 120), size=3000, height=2000), "png"),
        (encoded("mjpeg", 2400, 3200, "yuvj420p"), "jpg"),
        (encoded("libwebp", 2000, 1000, "yuv420p"), "jpg"),
    ],
    ids=["png", "jpeg", "webp"],
)
async def test_a_large_image_gets_a_resized_copy_for_the_viewer_site(
    client: QuartClient, services: Services, admin: str, image: bytes, copy_ext: str
) -> None:
    r = await post_product(client, admin, image=image)
    assert r.status_code == 302, await r.get_data(as_text=True)
    [p] = await products.list_products(services.db)
    copy = services.uploads.viewer_name(p.image)
    assert copy != p.image and copy.endswith(f"-view.{copy_ext}")
    served = await client.get(f"/uploads/{copy}")
    assert served.status_code == 200
    width, height = decoded_size(await served.get_data())
    original = image_size(image, p.image.rsplit(".", 1)[1])
    assert max(width, height) == VIEWER_SIDE
    assert abs(width / height - original[0] / original[1]) < 0.01
    assert await (await client.get(f"/uploads/{p.image}")).get_data() == image  # kept whole

    # A show with this product: the viewer page shows the copy, the admin the original.
    from appliance.catalog import shows

    data = shows.ShowData("Copies", "", 1_900_000_000, 60, None)
    show_id = await shows.create_show(services.db, data, product_ids=[p.id])
    viewer_page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert f"/uploads/{copy}" in viewer_page and f"/uploads/{p.image}" not in viewer_page
    admin_page = await (await client.get("/admin/products")).get_data(as_text=True)
    assert f"/uploads/{p.image}" in admin_page

    r = await client.post(f"/admin/products/{p.id}/delete", form={"csrf_token": admin})
    assert r.status_code == 302
    assert not any(services.uploads.directory.iterdir())  # the copy goes with it


async def test_a_small_image_is_its_own_viewer_copy(
    client: QuartClient, services: Services, admin: str
) -> None:
    r = await post_product(client, admin, image=product_picture((1, 2, 3), size=800))
    assert r.status_code == 302
    [p] = await products.list_products(services.db)
    assert services.uploads.viewer_name(p.image) == p.image
    assert [f.name for f in services.uploads.directory.iterdir()] == [p.image]
