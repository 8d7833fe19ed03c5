"""Simulcast: a publisher sending its video at several sizes at once (RFC 8853, and
RFC 9725 for WHIP), and which of them each viewer gets.

A browser asked for simulcast lists the layers in the offer as `a=rid:<id> send` and
`a=simulcast:send h;m;l`, sends no `a=ssrc` for them, and names each layer's RTP stream
with the rtp-stream-id header extension (its retransmissions with
repaired-rtp-stream-id). aiortc negotiates neither: it answers with its own header
extensions only and writes no `a=simulcast`, so a browser would send one layer. This
module reads the rids from the offer, keeps the two header extensions in the answer
(`accept_extensions`), and says in the answer that the layers are received
(`accept_in_answer`); media.aiortc_glue learns each layer's SSRC from the extension,
and the relay gives each layer a Stream of its own (media.relay, media.plane).

Which layer a viewer gets (`LayerChoice`): the largest whose bitrate fits the viewer's
bandwidth estimate (its REMB), less when it reports loss; a step down at once when the
estimate falls under what the viewer gets, a step up only after the estimate has room
for it for a while, or, since a viewer's estimate does not grow far past what it
receives, as a probe after a quiet spell, whose wait doubles each time the probe fails.
Switching itself waits for a keyframe of the new layer (media.relay.DownTrack.switch_to).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiortc import sdp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters

from media import aiortc_glue as glue
from media.keyframes import is_keyframe

if TYPE_CHECKING:
    from aiortc.rtcrtptransceiver import RTCRtpTransceiver

    from media.relay import DownTrack, Stream

RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
REPAIRED_RID_URI = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
MAX_LAYERS = 3
RECORDED_SILENCE = 1.0  # seconds without packets before the recording changes layer
_RID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")

FIT = 0.9  # a layer fits when its bitrate is at most this share of the estimate
UP_FIT = 0.75  # ... and for a step up, this share
DOWN_AFTER = 1.0  # seconds after a switch before the next step down
UP_AFTER = 4.0  # seconds of room in the estimate before a step up
PROBE_AFTER = 10.0  # seconds on a layer, without loss, before trying the next one up
PROBE_MAX = 64.0
PROBE_HOLD = 15.0  # seconds a probe may take to show room in the estimate
PROBE_SHORT = 5.0  # seconds after which an estimate that has not grown fails it
PROBE_GROWTH = 1.2  # ... grown by this factor
PROBE_DROP = 0.85  # an estimate falling under this share of its probe's best: it failed
LOSSY = 0.08  # reported loss share that makes the layer too big for the link
QUIET_LOSS = 0.02


def offered_rids(media: sdp.MediaDescription, text: str) -> list[str]:
    """The rids a publisher's video section sends, in its a=simulcast order (at most
    MAX_LAYERS; paused ones, `~id`, left out); [] without simulcast.

    aiortc's parser drops a=rid and a=simulcast, so they are read from the section's
    own lines in `text`, the offer.
    """
    section = _section_of(text, media.rtp.muxId)
    declared: list[str] = []
    order: list[str] = []
    for line in section:
        if line.startswith("a=rid:"):
            parts = line[6:].split()
            if len(parts) >= 2 and parts[1] == "send" and _RID.match(parts[0]):
                declared.append(parts[0])
        elif line.startswith("a=simulcast:"):
            words = line[12:].split()
            if len(words) >= 2 and words[0] == "send":
                for alternatives in words[1].split(";"):
                    first = alternatives.split(",")[0]
                    if first and not first.startswith("~"):
                        order.append(first)
    rids = [r for r in order if r in declared]
    rids = list(dict.fromkeys(rids))[:MAX_LAYERS]
    if len(rids) < 2 or not _has_rid_extension(media):
        return []
    return rids


def _has_rid_extension(media: sdp.MediaDescription) -> bool:
    return any(e.uri == RID_URI for e in media.rtp.headerExtensions)


def _section_of(text: str, mid: str | None) -> list[str]:
    """The lines of the m-section whose a=mid is `mid`."""
    sections: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            sections.append([])
        if sections:
            sections[-1].append(line)
    for lines in sections:
        if f"a=mid:{mid}" in lines:
            return lines
    return []


def accept_extensions(transceiver: RTCRtpTransceiver, media: sdp.MediaDescription) -> None:
    """After setRemoteDescription, before createAnswer: the transceiver's negotiated
    header extensions (aiortc's own list met with the offer's) plus the offer's
    rtp-stream-id and repaired-rtp-stream-id, with the offer's ids. The answer then
    carries them and the transport parses them."""
    negotiated: list[RTCRtpHeaderExtensionParameters] = glue.negotiated_extensions(transceiver)
    have = {e.uri for e in negotiated}
    extra = [
        e
        for e in media.rtp.headerExtensions
        if e.uri in (RID_URI, REPAIRED_RID_URI) and e.uri not in have
    ]
    glue.set_negotiated_extensions(transceiver, negotiated + extra)


def accept_in_answer(answer: str, mid: str, rids: Sequence[str]) -> str:
    """The answer with `a=rid:<id> recv` and `a=simulcast:recv ...` in section `mid`."""
    if not rids:
        return answer
    newline = "\r\n" if "\r\n" in answer else "\n"
    lines = answer.split(newline)
    out: list[str] = []
    in_section = False
    added = False
    for index, line in enumerate(lines):
        out.append(line)
        if line.startswith("m="):
            in_section = False
        if line == f"a=mid:{mid}":
            in_section = True
        following = lines[index + 1] if index + 1 < len(lines) else ""
        ends = following.startswith("m=") or following == ""
        if in_section and not added and ends:
            out.extend(f"a=rid:{rid} recv" for rid in rids)
            out.append("a=simulcast:recv " + ";".join(rids))
            added = True
    return newline.join(out)


# -- which layer a viewer gets --------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    key: str
    bitrate: float  # bits per second the layer carries now; 0: not sending


class LayerChoice:
    """One viewer's layer over time. `choose` is called about once a second."""

    __slots__ = ("changed_at", "current", "left", "probe", "probe_wait", "room_since")

    def __init__(self, current: str, now: float) -> None:
        self.current = current
        self.changed_at = now
        self.room_since: float | None = None
        self.probe_wait = PROBE_AFTER
        # A step up without room in the estimate: (began at, highest estimate since,
        # estimate then).
        self.probe: tuple[float, float, float] | None = None
        # The layer the viewer had to leave because the publisher stopped sending it.
        self.left: str | None = None

    def choose(
        self, layers: Sequence[Layer], estimate: float | None, loss: float, now: float
    ) -> str:
        """The layer this viewer should get now (its key). `layers` are listed largest
        picture first (the publisher's order); `loss` is a share (0..1)."""
        active = [x for x in layers if x.bitrate > 0]
        if not active:
            return self.current
        rates = {x.key: x.bitrate for x in active}
        rank = {x.key: i for i, x in enumerate(active)}
        if self.current not in rates:  # its layer stopped: the best that fits
            self.probe = None
            if self.left is None or self.left not in rank:
                self.left = self.current
            return self._switch(_best(active, estimate), now)
        if self.left is not None and self.left in rank:
            # The layer it had to leave sends again: back to it (as a probe, since the
            # estimate only knows the smaller layer), whatever the probe's wait.
            left, self.left = self.left, None
            if rank[left] < rank[self.current] and loss < LOSSY:
                self.probe = (now, estimate or 0.0, estimate or 0.0)
                return self._switch(left, now)
        here = rates[self.current]
        budget = float("inf") if estimate is None else estimate
        if loss >= LOSSY:
            budget = min(budget, here * FIT)  # the link cannot carry what it gets now
        if self.probe is not None:
            below = active[rank[self.current] + 1 :]
            return self._probing(below, here, budget, estimate, loss, now)
        best = _best(active, budget)
        # A viewer's estimate stays within about 1.5 times what it receives, so it says
        # "less" only when it falls under what the viewer gets now: a step down then.
        if rank[best] > rank[self.current] and budget < here:
            self.room_since = None
            if now - self.changed_at < DOWN_AFTER:
                return self.current
            return self._switch(best, now)
        above = active[: rank[self.current]]
        if not above:
            self.room_since = None
            return self.current
        step = above[-1]  # the next one up
        if step.bitrate <= budget * UP_FIT:
            if self.room_since is None:
                self.room_since = now
            if now - self.room_since >= UP_AFTER and now - self.changed_at >= UP_AFTER:
                return self._switch(step.key, now)
            return self.current
        self.room_since = None
        quiet = estimate is not None and estimate >= here * FIT and loss < QUIET_LOSS
        if quiet and now - self.changed_at >= self.probe_wait:
            self.probe = (now, estimate or 0.0, estimate or 0.0)
            return self._switch(step.key, now)
        return self.current

    def _probing(
        self,
        below: Sequence[Layer],
        here: float,
        budget: float,
        estimate: float | None,
        loss: float,
        now: float,
    ) -> str:
        """A viewer's estimate grows to at most 1.5 times what it receives: after a step
        up it needs seconds to show room for the new layer. The probe holds while the
        estimate does not fall and no loss is reported, until it fits (success) or
        PROBE_HOLD passes (failure: back down, and a longer wait before the next)."""
        assert self.probe is not None
        began, highest, first = self.probe
        highest = max(highest, estimate or 0.0)
        self.probe = (began, highest, first)
        if estimate is not None and estimate >= here * FIT and loss < LOSSY:
            self.probe = None
            self.probe_wait = PROBE_AFTER
            return self.current
        falling = estimate is not None and estimate < highest * PROBE_DROP
        # An estimate grows by some 8 % a second while the link has room: one that has
        # not grown after PROBE_SHORT is held down by the link.
        flat = estimate is not None and estimate < first * PROBE_GROWTH
        short = flat and now - began >= PROBE_SHORT
        if loss >= LOSSY or falling or short or now - began >= PROBE_HOLD:
            self.probe = None
            self.probe_wait = min(self.probe_wait * 2, PROBE_MAX)
            fitting = _best(below, budget) if below else self.current
            return self._switch(fitting, now)
        return self.current

    def _switch(self, key: str, now: float) -> str:
        if key != self.current:
            self.current = key
            self.changed_at = now
            self.room_since = None
        return self.current


def _best(active: Sequence[Layer], budget: float | None) -> str:
    """The largest layer (of `active`, largest first) whose bitrate is within
    `budget`, else the smallest one."""
    if budget is None:
        return active[0].key
    for layer in active:
        if layer.bitrate <= budget * FIT:
            return layer.key
    return active[-1].key


# -- a show's layers ------------------------------------------------------------------


class VideoLayers:
    """A show's video as its publisher sends it: one Stream per simulcast layer.

    `top`, the relay's video Stream, carries the first rid of the offer (the largest,
    as browsers list their encodings), or the only video of a publisher without
    simulcast; new viewers start on it. The other layers are Streams of their own, made
    by `make(rid)`, each with its own packet cache and keyframe requests; viewers on
    one layer share its per-packet work.

    One layer is `recorded` (and fed to the HLS rendition and relay workers): the
    largest that is sending. A browser stops sending its larger layers when its uplink
    narrows; then the recording moves to the largest layer still sending, at its next
    keyframe, and back up at a keyframe of a larger one when it returns.
    """

    def __init__(self, top: Stream, make: Callable[[str], Stream]) -> None:
        self.top = top
        self._make = make
        self.by_rid: dict[str, Stream] = {}  # empty: the publisher sends one layer
        self.recorded: Stream = top

    def set_rids(self, rids: Sequence[str]) -> None:
        """A (new) publisher sends these layers; viewers of a layer it no longer sends
        go back to the top one."""
        layers: dict[str, Stream] = {}
        for index, rid in enumerate(rids):
            known = self.by_rid.get(rid)
            if index == 0:
                layers[rid] = self.top
            else:
                layers[rid] = (
                    known if known is not None and known is not self.top else self._make(rid)
                )
        kept = set(map(id, layers.values()))
        for stream in self.by_rid.values():
            if id(stream) not in kept:
                for down in list(stream.downtracks) + list(stream.pending):
                    down.switch_to(self.top)
                    down.arrive(self.top)  # its layer is gone: no keyframe to wait for
        self.by_rid = layers
        self.recorded = self.top

    def _rank(self, stream: Stream) -> int:
        ranks = list(self.by_rid.values())
        return ranks.index(stream) if stream in ranks else len(ranks)

    def _silent(self, stream: Stream, now: float) -> bool:
        last = stream.last_packet
        return last is None or now - last[1] > RECORDED_SILENCE

    def feeds(self, stream: Stream, packet: Any, now: float) -> bool:
        """Whether this packet of `stream` goes to the recording: it is the recorded
        layer's, or the keyframe that makes `stream` the recorded layer (a larger one
        than now, or any while the recorded one is silent)."""
        recorded = self.recorded
        if stream is recorded:
            return True
        if self._rank(stream) > self._rank(recorded) and not self._silent(recorded, now):
            return False
        if not is_keyframe(stream.codec, packet.payload):
            return False
        self.recorded = stream
        return True

    def keep_recording(self, now: float) -> None:
        """On the relay's tick: while the recorded layer is silent, ask the largest layer
        still sending for a keyframe to move the recording to."""
        if not self.by_rid or not self._silent(self.recorded, now):
            return
        for stream in self.by_rid.values():
            if stream is not self.recorded and not self._silent(stream, now):
                stream.want_keyframe(now)
                return

    def lower(self) -> list[Stream]:
        """The layers other than the top one."""
        return [s for s in self.by_rid.values() if s is not self.top]

    def lowest_rate(self) -> float:
        """The bitrate of the smallest layer sending (the top one's without simulcast):
        under it, only audio is left for a viewer."""
        now = time.monotonic()
        rates = [
            s.bitrate for s in self.by_rid.values() if s.bitrate > 0 and not self._silent(s, now)
        ]
        return min(rates) if rates else self.top.bitrate

    def steer(self, down: DownTrack, now: float) -> None:
        """Once a second: move a viewer to the layer its estimate allows."""
        if not self.by_rid or down.paused:
            return
        choice = down.choice
        on = down.target or down.stream
        key = next((rid for rid, s in self.by_rid.items() if s is on), None)
        if choice is None or key is None:
            choice = down.choice = LayerChoice(key or next(iter(self.by_rid)), now)
        # by_rid is in the offer's order: the largest picture first. A layer the
        # publisher stopped sending counts as not sending (its bitrate figure is only
        # updated by packets that come).
        layers = [
            Layer(rid, 0.0 if self._silent(stream, now) else stream.bitrate)
            for rid, stream in self.by_rid.items()
        ]
        wanted = choice.choose(layers, down.remb, down.fraction_lost / 256, now)
        target = self.by_rid.get(wanted)
        if target is not None and target is not on:
            down.switch_to(target)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            rid: {
                "bitrate": round(stream.bitrate),
                "viewers": len(stream.downtracks),
                # The viewers' bandwidth estimates (REMB, bit/s; None: none yet).
                "estimates": [d.remb for d in stream.downtracks[:20]],
                "switching_here": len(stream.pending),
                "packets_in": stream.packets_in,
            }
            for rid, stream in self.by_rid.items()
        }
