"""Everything the relay needs from aiortc's insides, in one place.

aiortc decodes every received video track on a thread and encodes every sent one; a
forwarding relay needs neither. This module swaps aiortc's RTP receiver and sender for
ones that hand encoded packets to the relay and take rewritten packets from it, and
gives the relay a synchronous send path (SRTP protect, then the UDP socket of the
selected ICE pair) so forwarding one packet to one viewer needs no coroutine.

Private aiortc APIs used here, each covered by tests/test_media_glue.py so an aiortc
upgrade that changes them fails loudly (aiortc is pinned to 1.16):
- `RTCRtpTransceiver._RTCRtpTransceiver__receiver` / `__sender` (the swap), and its
  `_headerExtensions` (the simulcast rid extensions kept in a WHIP answer);
- `RTCRtpReceiver` name-mangled state: `__codecs`, `__rtx_ssrc`, `__started`,
  `__rtcp_task`, `__remote_streams`, `__rtcp_ssrc`, and its `_run_rtcp`, `_send_rtcp`,
  `_send_rtcp_nack`, `_send_rtcp_pli`, `_handle_rtcp_packet` methods (its NACK
  generator and bandwidth estimator are replaced by media/nack.py and media/uplink.py,
  which pace repairs and follow the uplink's standing queue);
- `RTCDtlsTransport._register_rtp_receiver/_sender`, `_unregister_rtp_sender`,
  `_tx_srtp`, `_state`, `transport` (the ICE transport) and its `_connection`
  (aioice), whose `_nominated[1]` is the selected pair (`protocol.transport`,
  `remote_addr`), and asyncio's `_SelectorDatagramTransport._sock`;
- `aioice.ice.get_host_addresses`, replaced when host addresses are configured;
- for a publisher's kernel arrival times (`KernelArrivals`): aioice's
  `Connection._queue` (an asyncio.Queue, whose `_put`/`_get` are hooked) and asyncio's
  `_SelectorDatagramTransport` read path (`_read_ready`'s job, through `_add_reader`,
  `_sock`, `_protocol`, `_conn_lost`, `max_size`, `_fatal_error`); and, from aiortc,
  that `RTCDtlsTransport._recv_next` hands a datagram to the receiver right after it
  took it from that queue;
- pylibsrtp's `Session._srtp`, `_cdata` and `_buffer` (the session's libsrtp context
  and its 1500-byte work buffer) and `pylibsrtp.lib.srtp_protect`, which
  `FastPath.send_packet` calls directly: the packet is written once, into that buffer,
  protected in place and sent from it (pylibsrtp's `protect` copies it in and out).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import aioice.ice
import pylibsrtp
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtcrtptransceiver import RTCRtpTransceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtcpSrPacket,
    RtpPacket,
    pack_remb_fci,
    unwrap_rtx,
)

from media.nack import UpstreamNacks
from media.uplink import UplinkEstimator

log = logging.getLogger(__name__)

_RECEIVER = "_RTCRtpReceiver__"  # prefix of RTCRtpReceiver's name-mangled attributes
RtpSink = Callable[["ForwardingReceiver", RtpPacket, int], None]
SrSink = Callable[["ForwardingReceiver", int, int, int], None]
MAX_SSRCS = 8  # incoming SSRCs one receiver keeps state for (3 layers and their RTX)


def set_host_addresses(addresses: Sequence[str]) -> None:
    """Gather ICE host candidates on exactly these addresses (e.g. 127.0.0.1 in tests).

    aioice leaves loopback out of its candidates and offers no option for it; an empty
    list restores aioice's own choice.
    """
    chosen = list(addresses)
    if chosen:
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
            a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
        ]
    else:
        aioice.ice.get_host_addresses = _original_get_host_addresses


_original_get_host_addresses = aioice.ice.get_host_addresses

# Linux stamps a datagram with the time it arrived when the socket asks (SO_TIMESTAMPNS,
# 35; Python 3.11's socket module does not name it) and hands the stamp over with
# recvmsg's ancillary data, as a struct timespec.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
# aiortc's arrival times are milliseconds since 1900 (NTP's era), the kernel's since 1970.
_NTP_EPOCH_MS = 2_208_988_800_000


class KernelArrivals:
    """When the kernel received each datagram of one ICE connection's selected socket.

    aiortc stamps a packet's arrival when Python reads it. While the server's event loop
    is busy (a loaded machine), datagrams wait in the socket's kernel buffer and are
    then read back to back: the bandwidth estimate (media/uplink.py) would read the
    server's own stall as queueing on the publisher's link and tell the publisher to
    slow down. So the socket asks the kernel for its receive time, the datagram is read
    with recvmsg, and the stamp travels beside it through aioice's queue (its `_put` and
    `_get`, hooked) to `last`, which the receiver reads when aiortc hands it the packet:
    aiortc's DTLS transport takes one datagram from that queue and handles it before it
    takes the next.
    """

    def __init__(self, transport: Any, queue: asyncio.Queue[Any]) -> None:
        self.last: int | None = None  # ms, aiortc's clock: the datagram being handled
        self.stamped = 0  # datagrams read with a kernel stamp
        self._transport = transport
        self._sock: socket.socket = transport._sock
        self._items: deque[Any] = queue._queue  # type: ignore[attr-defined]
        # Datagrams already queued came the old way: they have no stamp.
        self._stamps: deque[int | None] = deque([None] * len(self._items))
        self._reading: int | None = None

    @classmethod
    def install(cls, dtls: RTCDtlsTransport) -> KernelArrivals | None:
        """Stamp the arrivals on `dtls`'s selected pair (once per connection); None where
        the socket or the loop cannot (not Linux, not asyncio's selector loop)."""
        connection: Any = dtls.transport._connection
        queue = connection._queue
        installed = getattr(queue.__dict__.get("_get"), "__self__", None)
        if isinstance(installed, KernelArrivals):
            return installed
        pair: Any = connection._nominated.get(1)
        transport = pair.protocol.transport if pair is not None else None
        if transport is None or not hasattr(transport, "_sock"):
            return None
        try:
            transport._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError as exc:
            log.info("no kernel arrival times for the publisher: %s", exc)
            return None
        arrivals = cls(transport, queue)
        queue._put = arrivals._put
        queue._get = arrivals._get
        transport._add_reader(transport._sock_fd, arrivals._read_ready)
        return arrivals

    def _put(self, item: Any) -> None:
        self._items.append(item)
        self._stamps.append(self._reading)

    def _get(self) -> Any:
        self.last = self._stamps.popleft()
        return self._items.popleft()

    def _read_ready(self) -> None:
        """asyncio's datagram read, with recvmsg for the kernel's stamp."""
        transport = self._transport
        if transport._conn_lost:
            return
        try:
            data, ancillary, _flags, addr = self._sock.recvmsg(transport.max_size, _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            transport._protocol.error_received(exc)
            return
        except Exception as exc:
            transport._fatal_error(exc, "Fatal read error on datagram transport")
            return
        stamp = None
        for level, kind, value in ancillary:
            if (
                level == socket.SOL_SOCKET
                and kind == SO_TIMESTAMPNS
                and len(value) >= _TIMESPEC.size
            ):
                seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                stamp = seconds * 1000 + nanoseconds // 1_000_000 + _NTP_EPOCH_MS
                self.stamped += 1
        self._reading = stamp
        try:
            transport._protocol.datagram_received(data, addr)
        finally:
            self._reading = None


class ForwardingReceiver(RTCRtpReceiver):
    """Receives a publisher's track without ever decoding it.

    Keeps what a good receiver owes the publisher: receiver reports (aiortc's RTCP
    loop), NACKs for lost video packets, a bandwidth estimate (REMB); and hands every
    packet, RTX already unwrapped, to `on_rtp`.
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport) -> None:
        super().__init__(kind, transport)
        self.kind = kind
        self.on_rtp: RtpSink | None = None
        self.on_sr: SrSink | None = None
        self.codecs: dict[int, Any] = {}
        # NACK state per incoming SSRC (a simulcast publisher sends one per layer);
        # `nacks` is the first one's, for the uplink's figures.
        self.nacks = UpstreamNacks()
        self.upstream: dict[int, UpstreamNacks] = {}
        # Simulcast: each layer's SSRC -> its rid (rtp-stream-id), learned from the
        # packets, which name it (media/simulcast.py).
        self.rids: dict[int, str] = {}
        # The REMB to the publisher follows the standing queue too (media/uplink.py).
        self.uplink = UplinkEstimator() if kind == "video" else None
        # The kernel's arrival times for it, once connected (KernelArrivals).
        self.arrivals: KernelArrivals | None = None

    def _private(self, name: str) -> Any:
        return getattr(self, _RECEIVER + name)

    async def receive(self, parameters: RTCRtpReceiveParameters) -> None:
        if self._private("started"):
            return
        rtx_ssrc = self._private("rtx_ssrc")
        for codec in parameters.codecs:
            if codec.payloadType is not None:
                self.codecs[codec.payloadType] = codec
                self._private("codecs")[codec.payloadType] = codec
        for encoding in parameters.encodings:
            if encoding.rtx:
                rtx_ssrc[encoding.rtx.ssrc] = encoding.ssrc
        # Unlike aiortc's receive(): no decoder thread.
        self.transport._register_rtp_receiver(self, parameters)
        if self.uplink is not None:
            self.arrivals = KernelArrivals.install(self.transport)
        setattr(self, _RECEIVER + "rtcp_task", asyncio.ensure_future(self._run_rtcp()))
        setattr(self, _RECEIVER + "started", True)

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        await super()._handle_rtcp_packet(packet)
        if isinstance(packet, RtcpSrPacket) and self.on_sr is not None:
            info = packet.sender_info
            self.on_sr(self, packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if not self._enabled:
            return
        codec = self.codecs.get(packet.payload_type)
        estimator = self.uplink
        rtcp_ssrc = self._private("rtcp_ssrc")
        arrivals = self.arrivals
        if arrivals is not None and arrivals.last is not None:
            arrival_time_ms = arrivals.last  # when the kernel had it, not when we read it
        if estimator is not None and packet.extensions.abs_send_time is not None:
            remb = estimator.add(
                abs_send_time=packet.extensions.abs_send_time,
                arrival_time_ms=arrival_time_ms,
                payload_size=len(packet.payload) + packet.padding_size,
                ssrc=packet.ssrc,
                retransmission=codec is not None and is_rtx(codec),
            )
            if rtcp_ssrc is not None and remb is not None:
                await self._send_rtcp(
                    RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
                    )
                )
        if codec is None:
            return
        streams = self._private("remote_streams")
        stats = streams.get(packet.ssrc)
        if stats is None:
            from aiortc.rtcrtpreceiver import StreamStatistics

            stats = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stats.add(packet)
        rid = packet.extensions.rtp_stream_id
        if rid is not None and packet.ssrc not in self.rids and len(self.rids) < MAX_SSRCS:
            self.rids[packet.ssrc] = rid
        resent = is_rtx(codec)
        if resent:
            original = self._private("rtx_ssrc").get(packet.ssrc)
            repaired = packet.extensions.repaired_rtp_stream_id
            if original is None and repaired is not None:
                # A simulcast layer's RTX stream names the layer it repairs.
                original = next((s for s, r in self.rids.items() if r == repaired), None)
                if original is not None:
                    self._private("rtx_ssrc")[packet.ssrc] = original
            apt = codec.parameters.get("apt")
            if original is None or len(packet.payload) < 2 or apt not in self.codecs:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=original)
        if self.kind == "video":
            # Our own NACK pacing, not aiortc's generator (media/nack.py says why).
            nacks = self.upstream.get(packet.ssrc)
            if nacks is None:
                if len(self.upstream) >= MAX_SSRCS:
                    del self.upstream[next(iter(self.upstream))]
                nacks = self.upstream[packet.ssrc] = UpstreamNacks(packet.ssrc)
                if self.nacks.ssrc == 0:
                    self.nacks = nacks
            now = time.monotonic()
            useful = nacks.received(packet.sequence_number, now)
            lost = nacks.due(now, self.uplink.queue if self.uplink else 0.0)
            if lost:
                await self._send_rtcp_nack(packet.ssrc, lost)
            if resent and not useful:
                # A resend of a packet already had: a browser pads its RTX stream with
                # those while it probes for room. Forwarded, it would reach every viewer
                # of the layer as a duplicate and count in the layer's bitrate.
                return
        if self.on_rtp is not None:
            try:
                self.on_rtp(self, packet, arrival_time_ms)
            except Exception:
                # A relay bug must not take the publisher's connection down with it.
                log.exception("forwarding a packet failed")

    async def send_pli(self, media_ssrc: int) -> None:
        await self._send_rtcp_pli(media_ssrc)


class ForwardingSender(RTCRtpSender):
    """Sends what the relay gives it; no encoder, no RTP task of its own.

    The relay writes packets through `FastPath`; this object exists so the peer
    connection negotiates, registers and stops it like any sender, and routes the
    viewer's RTCP (receiver reports, NACK, PLI/FIR, REMB) to `on_rtcp`.
    """

    def __init__(self, kind: str, transport: RTCDtlsTransport, template: RTCRtpSender) -> None:
        super().__init__(kind, transport)
        # Keep the identity the peer connection already put in the SDP.
        self._ssrc = template._ssrc
        self._rtx_ssrc = template._rtx_ssrc
        self._stream_id = template._stream_id
        self._track_id = template._track_id
        self.on_start: Callable[[ForwardingSender, RTCRtpSendParameters], None] | None = None
        self.on_rtcp: Callable[[AnyRtcpPacket], None] | None = None
        self.on_stop: Callable[[ForwardingSender], None] | None = None
        self._started = False

    async def send(self, parameters: RTCRtpSendParameters) -> None:
        if self._started:
            return
        self._started = True
        self.transport._register_rtp_sender(self, parameters)
        if self.on_start is not None:
            self.on_start(self, parameters)

    async def stop(self) -> None:
        if self._started:
            self._started = False
            self.transport._unregister_rtp_sender(self)
            if self.on_stop is not None:
                self.on_stop(self)

    async def _handle_rtcp_packet(self, packet: AnyRtcpPacket) -> None:
        if self.on_rtcp is not None:
            self.on_rtcp(packet)


def swap_receiver(transceiver: RTCRtpTransceiver) -> ForwardingReceiver:
    old = transceiver.receiver
    receiver = ForwardingReceiver(transceiver.kind, old.transport)
    receiver._set_rtcp_ssrc(transceiver.sender._ssrc)
    setattr(transceiver, "_RTCRtpTransceiver__receiver", receiver)  # noqa: B010
    return receiver


def swap_sender(transceiver: RTCRtpTransceiver) -> ForwardingSender:
    old = transceiver.sender
    sender = ForwardingSender(transceiver.kind, old.transport, old)
    setattr(transceiver, "_RTCRtpTransceiver__sender", sender)  # noqa: B010
    return sender


def negotiated_extensions(transceiver: RTCRtpTransceiver) -> list[Any]:
    """The header extensions aiortc negotiated for a transceiver (its own list met with
    the remote offer's), which its answer and its receiver use."""
    return list(transceiver._headerExtensions)


def set_negotiated_extensions(transceiver: RTCRtpTransceiver, extensions: list[Any]) -> None:
    """Between setRemoteDescription and createAnswer: answer (and parse) these."""
    transceiver._headerExtensions = list(extensions)


def header_extensions_map(parameters: RTCRtpSendParameters) -> HeaderExtensionsMap:
    extmap = HeaderExtensionsMap()
    extmap.configure(parameters)
    return extmap


def enlarge_receive_buffer(dtls: RTCDtlsTransport, size: int = 2 * 1024 * 1024) -> None:
    """Let the kernel hold a burst (a keyframe) while the loop is busy forwarding.

    The kernel caps the size at net.core.rmem_max; asking for more is harmless.
    """
    pair: Any = dtls.transport._connection._nominated.get(1)
    if pair is not None:
        pair.protocol.transport._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


SENT, CONGESTED, CLOSED = 0, 1, 2
_CONNECTED = State.CONNECTED
_HEADER = struct.Struct("!HII")  # sequence number, timestamp, SSRC at byte 2 of RTP
_SRTP_TRAILER = 16  # pylibsrtp's SRTP_MAX_TRAILER_LEN
_srtp_protect = pylibsrtp.lib.srtp_protect
_new_int = pylibsrtp.ffi.new


class FastPath:
    """Synchronous SRTP + UDP send on one viewer's DTLS transport.

    Writes straight to the selected pair's socket (asyncio's `_sock`), skipping the
    datagram transport's buffering: when the kernel's send buffer for that viewer is
    full, `send_rtp` answers CONGESTED and the caller drops instead of queueing. The
    kernel buffer is the only per-viewer queue, and it is bounded.
    """

    __slots__ = (
        "_addr",
        "_buffer",
        "_cdata",
        "_context",
        "_dtls",
        "_length",
        "_nominated",
        "_pair",
        "_session",
        "_sock",
    )

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._nominated: dict[int, Any] = dtls.transport._connection._nominated
        self._pair: Any = None
        self._sock: Any = None
        self._addr: Any = None
        self._session: Any = None
        self._context: Any = None
        self._cdata: Any = None
        self._buffer: memoryview | None = None
        self._length: Any = _new_int("int *")

    def _bind(self, pair: Any, session: Any) -> None:
        """Remember the pair's socket and address and the SRTP session's buffer."""
        if pair is not self._pair:
            self._pair = pair
            self._sock = pair.protocol.transport._sock
            self._addr = pair.remote_addr
        if session is not self._session:
            self._session = session
            self._context = session._srtp[0]
            self._cdata = session._cdata
            self._buffer = memoryview(session._buffer)

    def send_packet(self, template: bytes, seq: int, ts: int, ssrc: int) -> int:
        """Send the RTP packet `template` with this sequence number, timestamp and SSRC.

        The hot path: one copy of the template into the SRTP session's buffer, the
        header patched and the packet protected there, sent from there."""
        dtls = self._dtls
        if dtls._state is not _CONNECTED:
            return CLOSED
        pair = self._nominated.get(1)
        if pair is None:
            return CLOSED
        session = dtls._tx_srtp
        if pair is not self._pair or session is not self._session:
            self._bind(pair, session)
        buffer = self._buffer
        size = len(template)
        if buffer is None or size > len(buffer) - _SRTP_TRAILER:
            data = bytearray(template)
            _HEADER.pack_into(data, 2, seq, ts, ssrc)
            return self.send_rtp(bytes(data))
        buffer[:size] = template
        _HEADER.pack_into(buffer, 2, seq, ts, ssrc)
        length = self._length
        length[0] = size
        if _srtp_protect(self._context, self._cdata, length):
            return CLOSED  # libsrtp refused it (a broken session): like a closed one
        try:
            self._sock.sendto(buffer[: length[0]], self._addr)
        except BlockingIOError:
            return CONGESTED
        except OSError:
            return CLOSED
        return SENT

    def send_rtp(self, data: bytes) -> int:
        if self._dtls._state is not _CONNECTED:
            return CLOSED
        pair = self._nominated.get(1)
        if pair is None:
            return CLOSED
        try:
            pair.protocol.transport._sock.sendto(
                self._dtls._tx_srtp.protect(data), pair.remote_addr
            )
        except BlockingIOError:
            return CONGESTED
        except OSError:
            return CLOSED
        return SENT

    def send_rtcp(self, data: bytes) -> bool:
        if self._dtls._state is not _CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is None:
            return False
        pair.protocol.transport.sendto(self._dtls._tx_srtp.protect_rtcp(data), pair.remote_addr)
        return True
