"""A guest on the live, end to end in Chromium with fake cameras: the host goes live from
the studio and makes a guest link; the guest joins from a second browser; a viewer's page
plays both videos, follows the host's layout, and loses the guest when the host removes
them; the link works once. When the show ends the replay is composed with the guest."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.request
from urllib.parse import urlsplit

import av

from tests.conftest import PASSWORD, LiveServer
from tests.media_helpers import CounterVideoTrack, answer, make_publisher
from tests.test_browser_live import ARGS, CHROMIUM, create_host, pytestmark  # noqa: F401

PLAYING = """([sel]) => {
  const v = document.querySelector(sel);
  return !!v && v.videoWidth > 0 && v.currentTime > 0;
}"""


async def advancing(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    try:
        await page.wait_for_function(PLAYING, arg=[selector], timeout=20000)
    except Exception:
        state = await page.evaluate(
            "[document.body.dataset.guestState, document.querySelector('#stage').className,"
            " document.body.dataset.playerState, document.body.dataset.playerPath]"
        )
        raise AssertionError(f"{selector} is not playing: {state}") from None
    # Still advancing a moment later. HLS may wait a second or two at the live edge for the
    # next part on a busy machine, so it gets up to 10 s to move on; a frozen video never does.
    t0 = await page.evaluate(f"document.querySelector('{selector}').currentTime")
    try:
        await page.wait_for_function(
            "([sel, t0]) => document.querySelector(sel).currentTime > t0 + 0.5",
            arg=[selector, t0],
            timeout=10000,
        )
    except Exception:
        t1 = await page.evaluate(f"document.querySelector('{selector}').currentTime")
        raise AssertionError(f"{selector} stopped at {t0} s (now {t1} s)") from None


async def reveal(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    """On a phone the studio's moderation (and guest controls) may sit in a sheet: open it."""
    if await page.is_visible(selector):
        return
    opener = page.locator("[aria-controls=studio-sheet]:not(#studio-sheet-close)")
    if await opener.count():
        await opener.first.click()
    await page.wait_for_selector(selector, state="visible", timeout=5000)


def composition(server: LiveServer, show_id: int) -> str | None:
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        row = conn.execute(
            "SELECT status FROM guest_compositions WHERE show_id = ?", (show_id,)
        ).fetchone()
    return row[0] if row else None


async def test_guest_joins_viewer_sees_both(live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright

    email = create_host(live_server)
    show = json.loads(
        live_server.cli(
            "shows", "create", "--title", "With a guest", "--starts-at", "2030-01-01T10:00"
        )
    )
    sid = show["id"]
    phone = {
        "viewport": {"width": 390, "height": 844},
        "bypass_csp": True,
        "is_mobile": True,
        "has_touch": True,
    }
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            host = await (await browser.new_context(**phone)).new_page()
            await host.goto(f"{live_server.url}/login?next=/studio/{sid}")
            await host.fill("#f-email", email)
            await host.fill("#f-password", PASSWORD)
            await host.click("button[type=submit]")
            await host.wait_for_url(f"**/studio/{sid}")
            # The host's camera: a real WHIP client sending the grey counter picture
            # (tests/media_helpers.py), told apart from the guest's green fake camera.
            pc, offer = await make_publisher(CounterVideoTrack(640, 360, 30))
            request = urllib.request.Request(
                f"{live_server.url}/whip/{sid}",
                data=offer.encode(),
                method="POST",
                headers={
                    "Content-Type": "application/sdp",
                    "Authorization": f"Bearer {show['stream_key']}",
                },
            )
            reply = await asyncio.to_thread(urllib.request.urlopen, request, None, 30)
            await answer(pc, reply.read().decode())

            await reveal(host, "#guest-new-link")
            await host.click("#guest-new-link")
            await host.wait_for_function("document.querySelector('#guest-link').value !== ''")
            link = urlsplit(await host.input_value("#guest-link")).path
            assert link.startswith(f"/guest/{sid}/")

            guest_ctx = await browser.new_context(**phone)
            guest = await guest_ctx.new_page()
            await guest.goto(live_server.url + link)
            await guest.wait_for_function("document.querySelector('#preview').videoWidth > 0")
            await guest.screenshot(path="/tmp/g/guest.png")
            await guest.click("#go-live")
            await guest.wait_for_function(
                "document.body.dataset.studioState === 'live'", timeout=20000
            )

            viewer = await (await browser.new_context(**phone)).new_page()
            await viewer.goto(f"{live_server.url}/shows/{sid}")
            await advancing(viewer, "#player")
            await advancing(viewer, "#guest-video")
            assert await viewer.evaluate(
                "document.querySelector('#stage').classList.contains('guest-side')"
            )

            # The host switches the layout: the viewer's page follows.
            await host.click("#guest-layout-inset")
            await viewer.wait_for_function(
                "document.querySelector('#stage').classList.contains('guest-inset')",
                timeout=10000,
            )
            await viewer.wait_for_timeout(2500)  # some seconds of inset for the replay

            # The link works once: another phone is refused, a wrong token is unknown.
            other = await (await browser.new_context(**phone)).new_page()
            assert (await other.goto(live_server.url + link)).status == 403
            wrong = await other.goto(f"{live_server.url}/guest/{sid}/not-a-token")
            assert wrong.status == 404
            refused = await other.request.post(
                f"{live_server.url}/whip/{sid}/guest",
                headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/sdp"},
                data="v=0\r\n",
            )
            assert refused.status == 401

            # The host removes the guest: the viewer's guest video goes, the link is dead.
            await host.click("#guest-remove")
            await viewer.wait_for_function("!document.querySelector('#guest-video')", timeout=10000)
            await advancing(viewer, "#player")
            await guest.wait_for_function(
                "document.body.dataset.studioState !== 'live'", timeout=15000
            )
            assert (await guest.reload()).status == 403

            # Some seconds of the host alone, then the host ends the show.
            await viewer.wait_for_timeout(2000)
            ended = await host.evaluate(
                """async (url) => (await fetch(url, {method: "POST", headers: {
                     "X-CSRF-Token": document.querySelector("#guest-controls").dataset.csrfToken
                   }})).status""",
                f"/studio/{sid}/end",
            )
            assert ended == 204
            await pc.close()
        finally:
            await browser.close()

    # The replay is composed once, in the background, with the guest's picture.
    deadline = time.monotonic() + 180
    while composition(live_server, sid) != "ready":
        assert composition(live_server, sid) != "failed", live_server.output()[-3000:]
        assert time.monotonic() < deadline, live_server.output()[-3000:]
        await asyncio.sleep(1)
    # The guest's own recording is gone once it is in the replay.
    assert not (live_server.data_dir / "recordings" / "guest" / f"show-{sid}").exists()
    replay = live_server.data_dir / "replays" / f"show-{sid}.mp4"
    with av.open(str(replay)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio, "the replay has sound"
        kinds = [picture(frame) for frame in container.decode(video=0)]
    # The host's grey picture alone, then side by side with the guest's green one, then
    # the guest inset, then the host alone again after the guest was removed.
    assert kinds[0] == "host"
    assert "side" in kinds and "inset" in kinds, kinds
    assert kinds.index("side") < kinds.index("inset")
    assert kinds[-1] == "host"


def colour(frame: av.VideoFrame, x: float, y: float) -> tuple[int, int, int]:
    """(Y, U, V) at a place given as fractions of the width and height."""
    planes = frame.reformat(format="yuv420p").planes
    px, py = int(frame.width * x), int(frame.height * y)
    return (
        bytes(planes[0])[py * planes[0].line_size + px],
        bytes(planes[1])[py // 2 * planes[1].line_size + px // 2],
        bytes(planes[2])[py // 2 * planes[2].line_size + px // 2],
    )


def green(yuv: tuple[int, int, int]) -> bool:
    return yuv[1] < 110 and yuv[2] < 110  # Chromium's fake camera: a green picture


def grey(yuv: tuple[int, int, int]) -> bool:
    return abs(yuv[1] - 128) < 10 and abs(yuv[2] - 128) < 10


def picture(frame: av.VideoFrame) -> str:
    """What a replay frame shows: the host alone, host and guest side by side, or the
    guest inset in the bottom right corner."""
    if grey(colour(frame, 0.25, 0.1)) and green(colour(frame, 0.75, 0.5)):
        return "side"
    if grey(colour(frame, 0.25, 0.1)) and green(colour(frame, 0.8, 0.75)):
        return "inset"
    if grey(colour(frame, 0.25, 0.1)) and grey(colour(frame, 0.8, 0.75)):
        return "host"
    return "other"


async def test_guest_over_hls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Viewers on HLS (here every viewer: media.hls_only) see the guest too, from the
    guest's own rendition, and follow the layout."""
    from playwright.async_api import async_playwright

    from tests.conftest import launch, stop

    server = launch(tmp_path / "data", tmp_path / "server.log", {"VITRINE_MEDIA_HLS_ONLY": "1"})
    try:
        email = create_host(server)
        show = json.loads(
            server.cli("shows", "create", "--title", "HLS guest", "--starts-at", "2030-01-01T10:00")
        )
        sid = show["id"]
        pc, offer = await make_publisher(CounterVideoTrack(640, 360, 30))
        request = urllib.request.Request(
            f"{server.url}/whip/{sid}",
            data=offer.encode(),
            method="POST",
            headers={
                "Content-Type": "application/sdp",
                "Authorization": f"Bearer {show['stream_key']}",
            },
        )
        reply = await asyncio.to_thread(urllib.request.urlopen, request, None, 30)
        await answer(pc, reply.read().decode())
        phone = {"viewport": {"width": 390, "height": 844}, "bypass_csp": True, "is_mobile": True}
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                host = await (await browser.new_context(**phone)).new_page()
                await host.goto(f"{server.url}/login?next=/studio/{sid}")
                await host.fill("#f-email", email)
                await host.fill("#f-password", PASSWORD)
                await host.click("button[type=submit]")
                await host.wait_for_url(f"**/studio/{sid}")
                await reveal(host, "#guest-new-link")
                await host.click("#guest-new-link")
                await host.wait_for_function("document.querySelector('#guest-link').value !== ''")
                link = urlsplit(await host.input_value("#guest-link")).path

                guest = await (await browser.new_context(**phone)).new_page()
                await guest.goto(server.url + link)
                await guest.wait_for_function("document.querySelector('#preview').videoWidth > 0")
                await guest.click("#go-live")
                await guest.wait_for_function(
                    "document.body.dataset.studioState === 'live'", timeout=20000
                )

                viewer = await (await browser.new_context(**phone)).new_page()
                await viewer.goto(f"{server.url}/shows/{sid}")
                await advancing(viewer, "#player")
                await advancing(viewer, "#guest-video")
                assert await viewer.evaluate("document.body.dataset.playerPath") == "hls"
                src = await viewer.evaluate("document.querySelector('#guest-video').srcObject")
                assert src is None  # not a WebRTC stream: the guest's HLS rendition
                await host.click("#guest-layout-inset")
                await viewer.wait_for_function(
                    "document.querySelector('#stage').classList.contains('guest-inset')",
                    timeout=10000,
                )
            finally:
                await browser.close()
        await pc.close()
    finally:
        stop(server)
