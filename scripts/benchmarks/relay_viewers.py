"""The relay benchmark's viewers: light ones by the hundred, and a few full ones.

A light viewer is a real aiortc peer connection (WHEP offer, ICE, DTLS) until it is
connected; from then on its socket leaves aiortc's event-loop reader for one epoll
set that a process's light viewers share. SRTP leaves the RTP header in clear text,
and SRTCP the first 8 bytes: a light viewer counts datagrams per SSRC by that header
(and sequence-number gaps, which are datagrams the relay sent and this process failed
to read in time) with no unprotect, no jitter buffer and no decoding. It sends its
own receiver reports, so the relay keeps it like any viewer. STUN (consent checks)
and DTLS still go to aiortc.

A full viewer is plain aiortc: SRTP unprotect, NACKs, jitter buffer and decoding of
every frame; it counts decoded frames and the gaps in their timestamps, so delivery
is verified end to end beside the light viewers' counts.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

from media import aiortc_glue as glue
from media.keyframes import is_keyframe

RTP = struct.Struct("!BBHII")
VIDEO_FRAME_TICKS = 3000  # 90 kHz at 30 fps


class LightViewer:
    def __init__(self, counter: SocketCounter) -> None:
        self.counter = counter
        self.pc = RTCPeerConnection()
        self.receivers: dict[str, glue.ForwardingReceiver] = {}
        for kind in ("audio", "video"):
            receiver = glue.swap_receiver(self.pc.addTransceiver(kind, direction="recvonly"))
            receiver.on_rtp = self.on_rtp  # only until the socket is counted
            setattr(receiver, glue._RECEIVER + "remote_bitrate_estimator", None)
            setattr(receiver, glue._RECEIVER + "nack_generator", None)
            self.receivers[kind] = receiver
        self.kinds: dict[int, str] = {}  # payload type -> kind
        # ssrc -> [packets, first extended seq, highest extended seq, kind]
        self.ssrcs: dict[int, list[Any]] = {}
        self.frames = 0
        self.rtcp = 0
        self.connect_started = 0.0
        self.connected: float | None = None
        self.ended: float | None = None  # closed or failed, from the offer
        self.first_keyframe: float | None = None

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected" and self.connected is None:
                self.connected = time.monotonic() - self.connect_started
                self.count_at_the_socket()
            elif self.pc.connectionState in ("closed", "failed") and self.ended is None:
                self.ended = time.monotonic() - self.connect_started

    async def connect(self, url: str, post: Any) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.connect_started = time.monotonic()
        answer = await asyncio.to_thread(post, url, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def on_rtp(self, receiver: Any, packet: Any, _arrival: int) -> None:
        """A packet aiortc unprotected before the socket was taken over."""
        self.count(receiver.kind, packet.ssrc, packet.sequence_number, bool(packet.marker))
        if receiver.kind == "video" and self.first_keyframe is None:
            codec = receiver.codecs.get(packet.payload_type)
            if codec and is_keyframe(codec.mimeType.lower(), packet.payload):
                self.first_keyframe = time.monotonic() - self.connect_started

    def count(self, kind: str, ssrc: int, seq: int, marker: bool) -> None:
        state = self.ssrcs.get(ssrc)
        if state is None:
            self.ssrcs[ssrc] = [1, seq - 1, seq, kind]
        else:
            state[0] += 1
            top = state[2]
            ext = (top & ~0xFFFF) | seq
            if ext < top - 0x8000:
                ext += 0x10000
            elif ext > top + 0x8000:
                ext -= 0x10000
            if ext > top:
                state[2] = ext
        if kind == "video":
            if marker:
                self.frames += 1
            if self.first_keyframe is None:
                # The relay starts every viewer's video on a keyframe (media/relay.py):
                # the first video packet at the socket is the first keyframe's.
                self.first_keyframe = time.monotonic() - self.connect_started

    def learn_kinds(self) -> None:
        """Payload types by kind, once aiortc has started the receivers."""
        for kind, receiver in self.receivers.items():
            for pt in receiver.codecs:
                self.kinds[pt] = kind

    def count_at_the_socket(self) -> None:
        self.learn_kinds()
        dtls = self.receivers["video"].transport
        pair = dtls.transport._connection._nominated.get(1)
        if pair is not None:
            self.counter.add(self, pair.protocol)

    def reset(self) -> None:
        for state in self.ssrcs.values():
            state[0] = 0
            state[1] = state[2]
        self.frames = self.rtcp = 0

    def report(self) -> dict[str, Any]:
        packets = {"audio": 0, "video": 0}
        lost = 0
        for received, first, top, kind in self.ssrcs.values():
            packets[kind] += received
            lost += max(top - first - received, 0)  # reset() leaves first = top counted
        return {
            "packets": packets,
            "frames": self.frames,
            "gaps": lost,
            "rtcp": self.rtcp,
            "first_keyframe": self.first_keyframe,
            "connected": self.connected,
            "ended": self.ended,
            "state": self.pc.connectionState,
        }

    async def send_receiver_report(self) -> None:
        """What aiortc's receiver would report, from the counts at the socket."""
        receiver = self.receivers["video"]
        rtcp_ssrc = getattr(receiver, glue._RECEIVER + "rtcp_ssrc")
        if not self.ssrcs or rtcp_ssrc is None or self.pc.connectionState != "connected":
            return
        reports = [
            RtcpReceiverInfo(
                ssrc=ssrc,
                fraction_lost=0,
                packets_lost=0,
                highest_sequence=top & 0xFFFFFFFF,
                jitter=0,
                lsr=0,
                dlsr=0,
            )
            for ssrc, (_n, _first, top, _kind) in self.ssrcs.items()
        ]
        await receiver._send_rtcp(RtcpRrPacket(ssrc=rtcp_ssrc, reports=reports))


class SocketCounter:
    """One epoll set for all of a process's light viewers' sockets, read in one callback."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.by_fd: dict[int, tuple[LightViewer, socket.socket, Any]] = {}
        self.buffer = bytearray(2048)
        self.view = memoryview(self.buffer)
        asyncio.get_running_loop().add_reader(self.epoll.fileno(), self.drain)

    def add(self, viewer: LightViewer, protocol: Any) -> None:
        transport = protocol.transport
        transport.pause_reading()  # asyncio no longer reads it; drain() does
        sock: socket.socket = transport._sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.by_fd[sock.fileno()] = (viewer, sock, protocol.datagram_received)
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def remove(self, viewer: LightViewer) -> None:
        for fd, (owner, _sock, _orig) in list(self.by_fd.items()):
            if owner is viewer:
                self.epoll.unregister(fd)
                del self.by_fd[fd]

    def drain(self) -> None:
        buffer, view, unpack = self.buffer, self.view, RTP.unpack_from
        for fd, _events in self.epoll.poll(0):
            entry = self.by_fd.get(fd)
            if entry is None:
                continue
            viewer, sock, original = entry
            kinds, count = viewer.kinds, viewer.count
            while True:
                try:
                    size, addr = sock.recvfrom_into(buffer)
                except BlockingIOError:
                    break
                except OSError:
                    self.epoll.unregister(fd)
                    del self.by_fd[fd]
                    break
                if size >= 12 and 128 <= buffer[0] < 192:
                    b1 = buffer[1]
                    if 192 <= b1 <= 223:  # SRTCP: clear-text header, not unprotected
                        viewer.rtcp += 1
                        continue
                    _b0, b1, seq, _ts, ssrc = unpack(buffer)
                    kind = kinds.get(b1 & 0x7F)
                    if kind is None:
                        viewer.learn_kinds()
                        kind = kinds.get(b1 & 0x7F)
                    if kind is not None:
                        count(kind, ssrc, seq, b1 & 0x80 != 0)
                        continue
                original(bytes(view[:size]), addr)  # STUN, DTLS


class FullViewer:
    """aiortc as a player would use it: unprotect, NACK, jitter buffer, decode."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.frames = 0
        self.missing = 0  # frames absent from the decoded timestamps
        self.audio_frames = 0
        self.connect_started = 0.0
        self.connected: float | None = None
        self.first_keyframe: float | None = None
        self.tasks: list[asyncio.Task[None]] = []
        for kind in ("audio", "video"):
            self.pc.addTransceiver(kind, direction="recvonly")

        @self.pc.on("track")
        def _track(track: Any) -> None:
            self.tasks.append(asyncio.ensure_future(self.consume(track)))

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected" and self.connected is None:
                self.connected = time.monotonic() - self.connect_started
                # As a browser's: room for a keyframe's burst while decoding.
                transceiver = self.pc.getTransceivers()[0]
                glue.enlarge_receive_buffer(transceiver.receiver.transport, 1 << 20)

    async def connect(self, url: str, post: Any) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.connect_started = time.monotonic()
        answer = await asyncio.to_thread(post, url, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def consume(self, track: Any) -> None:
        last_pts: int | None = None
        try:
            while True:
                frame = await track.recv()
                if track.kind != "video":
                    self.audio_frames += 1
                    continue
                if self.first_keyframe is None:
                    self.first_keyframe = time.monotonic() - self.connect_started
                self.frames += 1
                if last_pts is not None and frame.pts is not None:
                    step = round((frame.pts - last_pts) / VIDEO_FRAME_TICKS)
                    self.missing += max(step - 1, 0)
                last_pts = frame.pts
        except MediaStreamError:
            return

    def reset(self) -> None:
        self.frames = self.missing = self.audio_frames = 0

    def report(self) -> dict[str, Any]:
        return {
            "packets": {},
            "frames": self.frames,
            "gaps": self.missing,
            "audio_frames": self.audio_frames,
            "first_keyframe": self.first_keyframe,
            "connected": self.connected,
            "state": self.pc.connectionState,
        }
