"""The selective forwarding relay: one show's incoming tracks, fanned out to viewers.

Packets are never decoded. For each packet from the publisher the relay serialises the
RTP header once per distinct viewer header layout (payload type and header-extension
IDs differ between browsers), then for each viewer patches sequence number, timestamp
and SSRC into a copy, protects it with that viewer's SRTP session and hands it to that
viewer's UDP socket. Nothing in that loop awaits, logs or allocates beyond the copy.

Per-viewer decisions (the "selective" part), all in `DownTrack.write`:
- a video viewer starts, and restarts after any drop, on a keyframe; while any viewer
  waits, the relay asks the publisher for one (PLI, at most every 500 ms);
- a viewer whose socket cannot take more (the kernel's send buffer for it is full,
  see media.aiortc_glue.FastPath) loses packets until the next keyframe; nobody else
  waits for it;
- a viewer can be switched to audio only (its bandwidth estimate is far below the
  video's bitrate, or the page is hidden) and back, with a fresh keyframe;
- with a simulcast publisher each layer is a Stream of its own; a viewer moves to
  another layer (`DownTrack.switch_to`) at that layer's next keyframe, and keeps the
  layer it has until then.
"""

from __future__ import annotations

import itertools
import struct
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    AnyRtcpPacket,
    HeaderExtensionsMap,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
    RtpPacket,
    unpack_remb_fci,
)

from media.aiortc_glue import CONGESTED
from media.keyframes import is_keyframe
from media.packetcache import PacketCache
from media.rewrite import SequenceRewriter

KEYFRAME_INTERVAL = 0.5  # seconds between two keyframe requests to the publisher
NTP_EPOCH = 2208988800
FANOUT_RING = 1024
# Generations are unique across streams: a viewer's NACK for a packet of the layer it
# had before a switch can never be answered with another layer's packet.
_GENERATIONS = itertools.count(1)
# Each distinct header layout (mid, header-extension IDs) a small number: a template's
# key is that number and the payload type in one int, hashed in no time per packet.
_LAYOUTS: dict[tuple[Any, ...], int] = {}


def ntp_now() -> int:
    now = time.time() + NTP_EPOCH
    return (int(now) << 32) | int((now % 1) * (1 << 32))


def abs_send_time() -> int:
    """Now, as the abs-send-time header extension writes it (6.18 fixed-point seconds
    of the NTP clock, 24 bits)."""
    return int((time.time() + NTP_EPOCH) * (1 << 18)) & 0xFFFFFF


def codec_key(mime_type: str) -> str:
    return mime_type.lower()


@dataclass(slots=True)
class SourcePacket:
    """One packet from the publisher, shared by every viewer's forwarding."""

    seq: int
    ts: int
    marker: int
    payload: bytes
    codec: str
    keyframe: bool
    generation: int
    abs_send_time: int | None
    audio_level: tuple[bool, int] | None
    templates: dict[int, bytes] = field(default_factory=dict)


class Stream:
    """One kind of media (audio or video) coming into a show, across publishers."""

    def __init__(self, kind: str, request_keyframe: Callable[[], None]) -> None:
        self.kind = kind
        self.downtracks: list[DownTrack] = []
        # Viewers moving to this stream (another simulcast layer) at its next keyframe.
        self.pending: list[DownTrack] = []
        self.cache: PacketCache[SourcePacket] = PacketCache(2048 if kind == "video" else 256)
        self.generation = 0
        self.codec = ""
        self.clock_rate = 90000 if kind == "video" else 48000
        self._request_keyframe = request_keyframe
        self._last_keyframe_request = 0.0
        # (publisher NTP time, publisher RTP time, local monotonic time) of the last SR.
        self.sr: tuple[int, int, float] | None = None
        self.last_packet: tuple[int, float] | None = None  # (rtp ts, local time)
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        # Counters of viewers who left, so that the stream's totals never go down.
        self.dropped_by_gone = 0
        self.retransmitted_by_gone = 0
        self._bitrate_window: tuple[float, int] = (time.monotonic(), 0)
        self.bitrate = 0.0  # bits per second, over the last second or so
        # Time from a packet reaching the relay to its send to the last viewer, in
        # seconds, for the last FANOUT_RING packets that had viewers.
        self.fanout = array("d", [0.0]) * FANOUT_RING
        self.fanout_count = 0

    def new_source(self, codec: str, clock_rate: int) -> None:
        """A (new) publisher starts sending this stream."""
        self.generation = next(_GENERATIONS)
        self.codec = codec
        self.clock_rate = clock_rate
        self.cache.clear()
        self.sr = None
        self.last_packet = None

    def want_keyframe(self, now: float) -> None:
        if self.kind == "video" and now - self._last_keyframe_request >= KEYFRAME_INTERVAL:
            self._last_keyframe_request = now
            self._request_keyframe()

    def waiting_viewers(self) -> int:
        return sum(1 for d in self.downtracks if d.need_keyframe and not d.paused) + len(
            self.pending
        )

    def on_packet(self, packet: RtpPacket, now: float) -> None:
        payload = packet.payload
        ext = packet.extensions
        source = SourcePacket(
            packet.sequence_number,
            packet.timestamp,
            packet.marker,
            payload,
            self.codec,
            self.kind == "video" and is_keyframe(self.codec, payload),
            self.generation,
            # The relay's own send time (all viewers get the packet now): a viewer's
            # bandwidth estimate then measures the relay-to-viewer path, which is what
            # its layer is chosen for, not the publisher's uplink as well.
            None if ext.abs_send_time is None else abs_send_time(),
            ext.audio_level,
        )
        self.cache.put(source.seq, source)
        self.packets_in += 1
        self.bytes_in += len(payload)
        self.last_packet = (packet.timestamp, now)
        started, counted = self._bitrate_window
        if now - started >= 1.0:
            self.bitrate = (self.bytes_in - counted) * 8 / (now - started)
            self._bitrate_window = (now, self.bytes_in)
        if self.pending and source.keyframe:
            for down in list(self.pending):
                down.arrive(self)
        downtracks = self.downtracks
        if not downtracks:
            return
        sent = 0
        for down in downtracks:
            if down.write(source, now):
                sent += 1
        self.packets_out += sent
        self.bytes_out += sent * len(payload)
        self.fanout[self.fanout_count % FANOUT_RING] = time.monotonic() - now
        self.fanout_count += 1

    def stats(self) -> dict[str, Any]:
        filled = min(self.fanout_count, FANOUT_RING)
        delays = sorted(self.fanout[:filled])

        def pct(q: float) -> float:
            return round(delays[min(filled - 1, int(q * filled))] * 1000, 3) if filled else 0.0

        return {
            "codec": self.codec,
            "packets_in": self.packets_in,
            "bytes_in": self.bytes_in,
            "packets_out": self.packets_out,
            "bitrate": round(self.bitrate),
            "viewers": len(self.downtracks),
            "waiting_for_keyframe": self.waiting_viewers(),
            "dropped": sum(d.dropped for d in self.downtracks),
            "fanout_ms_p50": pct(0.5),
            "fanout_ms_p99": pct(0.99),
        }

    def totals(self) -> dict[str, int]:
        """Counters since the stream began, viewers who left included (for /metrics)."""
        return {
            "packets_in": self.packets_in,
            "bytes_in": self.bytes_in,
            "packets_out": self.packets_out,
            "bytes_out": self.bytes_out,
            "dropped": self.dropped_by_gone + sum(d.dropped for d in self.downtracks),
            "retransmitted": self.retransmitted_by_gone
            + sum(d.retransmitted for d in self.downtracks),
        }

    def on_sender_report(self, ntp: int, rtp_ts: int, now: float) -> None:
        self.sr = (ntp, rtp_ts, now)

    def mapping_at(self, now: float) -> tuple[int, int] | None:
        """(NTP time, source RTP time) for the instant `now`, from the publisher's clock."""
        if self.sr is not None:
            ntp, rtp_ts, at = self.sr
        elif self.last_packet is not None:
            rtp_ts, at = self.last_packet
            ntp = ntp_now() - int((now - at) * (1 << 32))
        else:
            return None
        elapsed = now - at
        return ntp + int(elapsed * (1 << 32)), rtp_ts + int(elapsed * self.clock_rate)


class DownTrack:
    """One viewer's copy of one stream."""

    def __init__(self, stream: Stream, viewer_id: str) -> None:
        self.stream = stream
        self.viewer_id = viewer_id
        self.kind = stream.kind
        self.ssrc = 0
        self.cname = ""
        self.mid = ""
        self.extmap: HeaderExtensionsMap | None = None
        self.layout: tuple[Any, ...] = ()
        self.layout_key = 0  # _LAYOUTS[layout] << 8: a template's key is this | pt
        self.payload_types: dict[str, int] = {}
        self.rtx_types: dict[str, int] = {}  # codec -> RTX payload type, if negotiated
        self.rtx_ssrc = 0
        self._rtx_seq = 0
        self.path: Any = None  # media.aiortc_glue.FastPath once connected
        self.rewriter: SequenceRewriter | None = None
        self.need_keyframe = self.kind == "video"
        self.target: Stream | None = None  # the layer it moves to at its next keyframe
        self.choice: Any = None  # media.simulcast.LayerChoice, with a simulcast publisher
        self.previous: Stream | None = None  # the layer before the last switch (NACKs)
        self._previous_ts_offset = 0  # ... and its timestamp offset
        self.paused = False
        self.generation = -1
        self.packets_sent = 0
        self.octets_sent = 0
        self.dropped = 0
        self.retransmitted = 0
        self.joined_at = time.monotonic()
        self.first_keyframe_at: float | None = None
        self.remb: int | None = None
        self.fraction_lost = 0
        self.last_rtcp = time.monotonic()
        self._nack_budget = 0.0
        self._nack_refill = time.monotonic()

    # -- set-up, from the viewer's negotiated parameters --------------------------

    def start(
        self,
        *,
        ssrc: int,
        cname: str,
        mid: str,
        extmap: HeaderExtensionsMap,
        ext_ids: tuple[int, ...],
        payload_types: dict[str, int],
        rtx_types: dict[str, int],
        rtx_ssrc: int,
        path: Any,
        first_seq: int,
        first_ts: int,
    ) -> None:
        self.ssrc = ssrc
        self.rtx_types = rtx_types
        self.rtx_ssrc = rtx_ssrc
        self._rtx_seq = first_seq ^ 0x5A5A
        self.cname = cname
        self.mid = mid
        self.extmap = extmap
        self.payload_types = payload_types
        self.layout = (mid, ext_ids)
        self.layout_key = _LAYOUTS.setdefault(self.layout, len(_LAYOUTS)) << 8
        self.path = path
        self.rewriter = SequenceRewriter(first_seq, first_ts, self.stream.clock_rate)
        self.stream.downtracks.append(self)
        if self.kind == "video":
            self.stream.want_keyframe(time.monotonic())

    def switch_to(self, stream: Stream) -> None:
        """Move to another layer of the same video at that layer's next keyframe; until
        then the viewer keeps getting the layer it has. The viewer sees one stream:
        sequence numbers go on, timestamps go on with the time elapsed (SequenceRewriter)
        and sender reports follow the new layer's clock."""
        if self.target is not None and self in self.target.pending:
            self.target.pending.remove(self)
        self.target = None
        if stream is self.stream:
            return
        self.target = stream
        stream.pending.append(self)
        stream.want_keyframe(time.monotonic())

    def arrive(self, stream: Stream) -> None:
        """`stream`, this viewer's target, has a keyframe: the viewer is on it from now."""
        if self in stream.pending:
            stream.pending.remove(self)
        self.target = None
        if self in self.stream.downtracks:
            self.stream.downtracks.remove(self)
            stream.downtracks.append(self)
        self.previous, self.stream = self.stream, stream
        if self.rewriter is not None:
            self._previous_ts_offset = self.rewriter.timestamp_for(0)
        self.need_keyframe = True  # this keyframe: write() re-anchors the numbering on it

    def stop(self) -> None:
        if self.target is not None and self in self.target.pending:
            self.target.pending.remove(self)
        self.target = None
        if self in self.stream.downtracks:
            self.stream.downtracks.remove(self)
            self.stream.dropped_by_gone += self.dropped
            self.stream.retransmitted_by_gone += self.retransmitted
            if self.path is not None:
                self.path.send_rtcp(bytes(RtcpByePacket(sources=[self.ssrc])))
        self.path = None

    # -- the hot path -------------------------------------------------------------

    def write(self, packet: SourcePacket, now: float) -> bool:
        """Forward one source packet to this viewer, or decide not to. True if sent."""
        rewriter = self.rewriter
        if rewriter is None or self.paused:
            return False
        if packet.generation != self.generation:
            self.generation = packet.generation
            rewriter.reanchor()
            if self.kind == "video":
                self.need_keyframe = True
        if self.need_keyframe:
            if not packet.keyframe:
                self.dropped += 1
                self.stream.want_keyframe(now)
                return False
            self.need_keyframe = False
            rewriter.reanchor()
            if self.first_keyframe_at is None:
                self.first_keyframe_at = now
        pt = self.payload_types.get(packet.codec)
        if pt is None:
            self.dropped += 1
            return False
        template = packet.templates.get(self.layout_key | pt) or self._template(packet, pt)
        seq, ts = rewriter.rewrite(packet.seq, packet.ts, now, packet.generation)
        result = self.path.send_packet(template, seq, ts, self.ssrc)
        if result:  # CONGESTED or CLOSED: this viewer loses the packet, nobody waits
            self.dropped += 1
            if result == CONGESTED and self.kind == "video":
                self.need_keyframe = True
            # The next packet sent continues the numbering: no gap to NACK for.
            rewriter.unsend(seq)
            return False
        self.packets_sent += 1
        self.octets_sent += len(packet.payload)
        return True

    def _template(self, packet: SourcePacket, pt: int) -> bytes:
        """The packet serialised for this viewer's header layout, once for all viewers
        with that layout; FastPath.send_packet patches sequence number, timestamp and
        SSRC into its copy."""
        header = RtpPacket(payload_type=pt, marker=packet.marker, payload=packet.payload)
        header.extensions.mid = self.mid
        header.extensions.abs_send_time = packet.abs_send_time
        header.extensions.audio_level = packet.audio_level
        assert self.extmap is not None  # set by start(), before any write()
        template = packet.templates[self.layout_key | pt] = header.serialize(self.extmap)
        return template

    def _serialise_rtx(self, packet: SourcePacket, rtx_pt: int, out_seq: int, ts: int) -> bytes:
        header = RtpPacket(
            payload_type=rtx_pt,
            marker=packet.marker,
            sequence_number=self._rtx_seq,
            timestamp=ts,
            ssrc=self.rtx_ssrc,
            payload=struct.pack("!H", out_seq) + packet.payload,
        )
        header.extensions.mid = self.mid
        self._rtx_seq = (self._rtx_seq + 1) % 65536
        assert self.extmap is not None
        return header.serialize(self.extmap)

    # -- RTCP from and to the viewer ----------------------------------------------

    def on_rtcp(self, packet: AnyRtcpPacket) -> None:
        now = time.monotonic()
        self.last_rtcp = now
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == self.ssrc:
                    self.fraction_lost = report.fraction_lost
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            self._retransmit(packet.lost, now)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            self.stream.want_keyframe(now)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if self.ssrc in ssrcs:
                self.remb = bitrate

    def _retransmit(self, lost: list[int], now: float) -> None:
        # At most 200 retransmissions a second per viewer: a broken client cannot
        # turn the relay into an amplifier.
        self._nack_budget = min(200.0, self._nack_budget + (now - self._nack_refill) * 200)
        self._nack_refill = now
        rewriter, path = self.rewriter, self.path
        if rewriter is None or path is None:
            return
        for out_seq in lost:
            if self._nack_budget < 1:
                return
            found = rewriter.source_of(out_seq)
            if found is None:
                continue
            in_seq, generation = found
            stream, before = self.stream, False
            if generation != stream.generation and self.previous is not None:
                stream, before = self.previous, True  # sent before the last switch of layer
            packet = stream.cache.get(in_seq)
            if packet is None or packet.generation != generation:
                continue
            # A resend with the same sequence number would be a replay to the viewer's
            # SRTP: retransmissions travel on the RTX stream (RFC 4588).
            rtx_pt = self.rtx_types.get(packet.codec)
            if rtx_pt is None:
                continue
            self._nack_budget -= 1
            self.retransmitted += 1
            if before:
                ts = (packet.ts + self._previous_ts_offset) % (1 << 32)
            else:
                ts = rewriter.timestamp_for(packet.ts)
            path.send_rtp(self._serialise_rtx(packet, rtx_pt, out_seq, ts))

    def sender_report(self, now: float) -> bytes | None:
        """SR + SDES for this viewer, with the publisher's clock mapping, or None."""
        if self.rewriter is None or self.packets_sent == 0:
            return None
        mapping = self.stream.mapping_at(now)
        if mapping is None:
            return None
        ntp, source_rtp = mapping
        sr = RtcpSrPacket(
            ssrc=self.ssrc,
            sender_info=RtcpSenderInfo(
                ntp_timestamp=ntp & 0xFFFFFFFFFFFFFFFF,
                rtp_timestamp=self.rewriter.timestamp_for(source_rtp),
                packet_count=self.packets_sent & 0xFFFFFFFF,
                octet_count=self.octets_sent & 0xFFFFFFFF,
            ),
        )
        sdes = RtcpSdesPacket(
            chunks=[RtcpSourceInfo(ssrc=self.ssrc, items=[(1, self.cname.encode())])]
        )
        return bytes(sr) + bytes(sdes)

    def set_paused(self, paused: bool) -> None:
        """Audio-only for this viewer (video paused) or back to video."""
        if paused == self.paused:
            return
        self.paused = paused
        if not paused and self.kind == "video":
            self.need_keyframe = True
            self.stream.want_keyframe(time.monotonic())
