"""The relay's per-packet path alone: real Stream, DownTrack, FastPath, SRTP sessions
and UDP sockets in one process, without the event loop, ICE or the load generator.

It answers "how much CPU does forwarding one packet to one viewer cost", the headroom
figure, apart from everything else a live server does.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Policy, Session

from media.aiortc_glue import FastPath
from media.relay import DownTrack, Stream

EXTENSIONS = [
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(
        id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
    ),
]


def viewer_path(sink: tuple[str, int]) -> tuple[FastPath, socket.socket]:
    """A FastPath over the same attributes a connected DTLS transport has."""
    policy = Policy(key=os.urandom(30), ssrc_type=Policy.SSRC_ANY_OUTBOUND)
    policy.allow_repeat_tx = True
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    pair = SimpleNamespace(
        protocol=SimpleNamespace(transport=SimpleNamespace(_sock=sock)), remote_addr=sink
    )
    dtls = SimpleNamespace(
        _state=State.CONNECTED,
        _tx_srtp=Session(policy),
        transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})),
    )
    return FastPath(dtls), sock  # type: ignore[arg-type]


def measure(viewers: int, packets: int = 600) -> float:
    """CPU microseconds per forwarded packet (process time, both user and system)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sink.setblocking(False)
    stream = Stream("video", lambda: None)
    stream.new_source("video/h264", 90000)
    sockets = []
    for i in range(viewers):
        path, sock = viewer_path(sink.getsockname())
        sockets.append(sock)
        extmap = HeaderExtensionsMap()
        extmap.configure(RTCRtpSendParameters(headerExtensions=EXTENSIONS))
        down = DownTrack(stream, str(i))
        down.start(
            ssrc=1000 + i,
            cname="bench",
            mid="1",
            extmap=extmap,
            ext_ids=(1, 3),
            payload_types={"video/h264": 102},
            rtx_types={},
            rtx_ssrc=0,
            path=path,
            first_seq=i,
            first_ts=i,
        )
        down.need_keyframe = False

    def run(first: int, count: int) -> None:
        for seq in range(first, first + count):
            packet = RtpPacket(
                payload_type=96,
                sequence_number=seq,
                timestamp=seq * 3000,
                ssrc=5,
                payload=os.urandom(1100),
            )
            packet.marker = 1
            packet.extensions.abs_send_time = seq
            stream.on_packet(packet, time.monotonic())
            while True:
                try:
                    sink.recv(2048)
                except BlockingIOError:
                    break

    run(0, 50)  # warm-up
    start = time.process_time()
    run(50, packets)
    elapsed = time.process_time() - start
    for sock in sockets:
        sock.close()
    sink.close()
    return 1e6 * elapsed / (packets * viewers)


if __name__ == "__main__":
    for n in (10, 100, 200):
        print(n, f"{measure(n):.1f} µs")
