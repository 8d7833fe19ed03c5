"""The packet fan-out: each packet of the publisher, once per worker, as one datagram.

A datagram carries what a worker's Stream needs to rebuild the packet: the show, the
kind, the main stream's generation (a new one: a new publisher or codec), the codec and
its clock rate, RTP sequence number, timestamp, marker, the two header extensions the
relay forwards, the payload, and for a simulcast publisher the packet's layer (its rid)
and the publisher's layers, largest first, so that each worker keeps every layer and
steers each of its viewers to the one its link allows. Sender reports travel the same
way, so they keep their order with the packets they describe.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from aiortc.rtp import RtpPacket

PACKET, SENDER_REPORT = 1, 2
KINDS = ("audio", "video")
KIND_CODE = {"audio": 0, "video": 1}
# type, kind, generation, clock rate, seq, timestamp, marker, abs-send-time (+1, 0: none),
# audio level (bit 7: present, bit 6: voice activity, low 7 bits: level)
_PACKET = struct.Struct("!BBIIHIBIB")
# type, kind, generation, NTP time, RTP time
_SR = struct.Struct("!BBIQI")
MAX_DATAGRAM = 65536
SEND_BUFFER = 4 * 1024 * 1024


def _names(*names: str) -> bytes:
    return b"".join(bytes((len(b),)) + b for b in (name.encode() for name in names))


def encode_packet(
    show: str,
    kind: str,
    generation: int,
    codec: str,
    clock_rate: int,
    packet: RtpPacket,
    rid: str = "",
    rids: str = "",
) -> bytes:
    """`rid`: the packet's simulcast layer; `rids`: the publisher's layers, largest
    first, joined by commas ("" for both without simulcast)."""
    ext = packet.extensions
    abs_send = 0 if ext.abs_send_time is None else ext.abs_send_time + 1
    level = 0
    if ext.audio_level is not None:
        vad, value = ext.audio_level
        level = 0x80 | (0x40 if vad else 0) | (value & 0x7F)
    return b"".join(
        (
            _PACKET.pack(
                PACKET,
                KIND_CODE[kind],
                generation & 0xFFFFFFFF,
                clock_rate,
                packet.sequence_number,
                packet.timestamp,
                packet.marker,
                abs_send,
                level,
            ),
            _names(show, codec, rid, rids),
            packet.payload,
        )
    )


def encode_sender_report(
    show: str, kind: str, generation: int, ntp: int, rtp_ts: int, rid: str = "", rids: str = ""
) -> bytes:
    head = _SR.pack(SENDER_REPORT, KIND_CODE[kind], generation & 0xFFFFFFFF, ntp, rtp_ts)
    return head + _names(show, "", rid, rids)


@dataclass(slots=True)
class FedPacket:
    show: str
    kind: str
    generation: int
    codec: str
    clock_rate: int
    packet: RtpPacket
    rid: str = ""
    rids: str = ""


@dataclass(slots=True)
class FedReport:
    show: str
    kind: str
    generation: int
    ntp: int
    rtp_ts: int
    rid: str = ""
    rids: str = ""


def decode(data: bytes) -> FedPacket | FedReport | None:
    """A datagram back into what it carries; None for anything malformed."""
    try:
        if data[0] == PACKET:
            _, kind, gen, clock, seq, ts, marker, abs_send, level = _PACKET.unpack_from(data)
            offset = _PACKET.size
        elif data[0] == SENDER_REPORT:
            _, kind, gen, ntp, rtp_ts = _SR.unpack_from(data)
            offset = _SR.size
        else:
            return None
        names = []
        for _ in range(4):  # show, codec, rid, rids
            size = data[offset]
            names.append(data[offset + 1 : offset + 1 + size].decode())
            offset += 1 + size
        show, codec, rid, rids = names
        if data[0] == SENDER_REPORT:
            return FedReport(show, KINDS[kind], gen, ntp, rtp_ts, rid, rids)
        packet = RtpPacket(sequence_number=seq, timestamp=ts, marker=marker, payload=data[offset:])
        if abs_send:
            packet.extensions.abs_send_time = abs_send - 1
        if level & 0x80:
            packet.extensions.audio_level = (bool(level & 0x40), level & 0x7F)
        return FedPacket(show, KINDS[kind], gen, codec, clock, packet, rid, rids)
    except (IndexError, struct.error, UnicodeDecodeError):
        return None


def feed_pair() -> tuple[socket.socket, socket.socket]:
    """(main's end, worker's end) of one worker's feed; the main end never blocks."""
    main_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    main_end.setblocking(False)
    main_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    worker_end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SEND_BUFFER)
    return main_end, worker_end
