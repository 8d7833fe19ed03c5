"""A decoding WHEP viewer for the network lab that notes the size of every picture it
decodes, whatever drew it (a browser's fake camera draws no stamp for tests/netlab.py's
viewer to read). Run by a test in a lab namespace, `python -m tests.lab_viewer URL
--bind ADDRESS`; it answers JSON lines on stdin/stdout as the lab's agents do.

Its bandwidth estimate (the REMB the relay chooses its layer by) is taken from the time
the kernel received each packet, as the relay's own is (media/aiortc_glue.py's
KernelArrivals): a browser stamps packets on its network thread, whereas this process
also decodes, and on a busy machine its stalls would otherwise read as congestion on
its link.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tests.netlab import _post_sdp, commands, now_ms, reply


def kernel_arrival_times(dtls: Any) -> bool:
    """Hand aiortc's receivers the kernel's arrival time of each packet on `dtls`."""
    from media import aiortc_glue as glue

    arrivals = glue.KernelArrivals.install(dtls)
    if arrivals is None:
        return False
    handle = dtls._handle_rtp_data

    async def stamped(data: bytes, arrival_time_ms: int) -> None:
        last = arrivals.last
        await handle(data, arrival_time_ms=arrival_time_ms if last is None else last)

    dtls._handle_rtp_data = stamped
    return True


async def run(args: argparse.Namespace) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from media import aiortc_glue as glue
    from tests.lab_jitter import GivingUpJitterBuffer

    glue.set_host_addresses([args.bind])
    pictures: list[list[int]] = []  # [at_ms, width, height]
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    video = pc.addTransceiver("video", direction="recvonly")
    # As tests/netlab.py's viewer: give up on a lost packet after a time, as a browser.
    setattr(  # noqa: B010
        video.receiver, "_RTCRtpReceiver__jitter_buffer", GivingUpJitterBuffer()
    )
    readers: list[asyncio.Future[None]] = []
    kernel = {"times": False}

    async def read(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                pictures.append([now_ms(), frame.width, frame.height])

    @pc.on("track")
    def on_track(track: Any) -> None:
        readers.append(asyncio.ensure_future(read(track)))

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and not kernel["times"]:
            kernel["times"] = kernel_arrival_times(video.receiver.transport)

    await pc.setLocalDescription(await pc.createOffer())
    status, body = await asyncio.to_thread(_post_sdp, args.url, pc.localDescription.sdp, {})
    if status != 201:
        reply({"error": f"WHEP answered {status}: {body}"})
        return
    await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
    reply({"ready": True, "at_ms": now_ms()})
    async for cmd in commands():
        op = cmd.get("op")
        if op == "report":
            since = cmd.get("since_ms", 0)
            reply(
                {
                    "state": pc.connectionState,
                    "kernel_times": kernel["times"],
                    "pictures": [p for p in pictures if p[0] >= since],
                    "now_ms": now_ms(),
                }
            )
        elif op == "stop":
            break
    for reader in readers:
        reader.cancel()
    await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.lab_viewer")
    parser.add_argument("url", help="the show's WHEP endpoint")
    parser.add_argument("--bind", required=True, help="the address to gather candidates on")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
