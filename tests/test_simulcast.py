"""Simulcast units: the rids of a browser's offer and the answer that takes them, which
layer a viewer gets, and the switch between layers as the viewer sees it (one stream:
sequence numbers and timestamps go on)."""

from __future__ import annotations

import itertools
import struct
import time

from aiortc import sdp
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtp import RTCP_RTPFB_NACK, HeaderExtensionsMap, RtcpRtpfbPacket, RtpPacket

from media import simulcast
from media.relay import DownTrack, Stream
from media.simulcast import Layer, LayerChoice

H264_IDR = bytes([0x65]) + b"\x00" * 40  # the start of an IDR slice
H264_P = bytes([0x41]) + b"\x00" * 40

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 102",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=sendonly",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        "a=rtpmap:102 H264/90000",
        "a=rid:h send",
        "a=rid:m send",
        "a=rid:l send",
        "a=simulcast:send h;m;~l",
        "",
    ]
)


def test_offered_rids_in_simulcast_order_without_paused_ones() -> None:
    description = sdp.SessionDescription.parse(OFFER)
    video = description.media[1]
    assert simulcast.offered_rids(video, OFFER) == ["h", "m"]
    assert simulcast.offered_rids(description.media[0], OFFER) == []
    # No rid header extension: the layers could not be told apart, so no simulcast.
    bare = OFFER.replace("a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n", "")
    assert simulcast.offered_rids(sdp.SessionDescription.parse(bare).media[1], bare) == []


def test_answer_accepts_the_layers_in_the_video_section() -> None:
    answer = "v=0\r\nm=audio 9 X 111\r\na=mid:0\r\nm=video 9 X 102\r\na=mid:1\r\na=sendrecv\r\n"
    accepted = simulcast.accept_in_answer(answer, "1", ["h", "m"])
    video = accepted.split("m=video")[1]
    assert "a=rid:h recv\r\na=rid:m recv\r\na=simulcast:recv h;m\r\n" in video
    assert "a=rid" not in accepted.split("m=video")[0]
    assert simulcast.accept_in_answer(answer, "1", []) == answer


def layers(h: float, m: float, low: float) -> list[Layer]:
    return [Layer("h", h), Layer("m", m), Layer("l", low)]


def test_layer_choice_steps_down_at_once_and_up_after_a_while() -> None:
    rates = layers(1_500_000, 500_000, 150_000)
    choice = LayerChoice("h", now=0.0)
    assert choice.choose(rates, None, 0.0, 2.0) == "h"  # no estimate yet: the largest
    assert choice.choose(rates, 3_000_000, 0.0, 3.0) == "h"
    # The estimate falls to 600 kbit/s: the middle layer fits, at once.
    assert choice.choose(rates, 600_000, 0.0, 4.0) == "m"
    # 200 kbit/s, but half a second after a switch: wait, then the small one.
    assert choice.choose(rates, 200_000, 0.0, 4.5) == "m"
    assert choice.choose(rates, 200_000, 0.0, 5.5) == "l"
    # Room for the middle layer again: only after UP_AFTER seconds of room.
    assert choice.choose(rates, 800_000, 0.0, 6.0) == "l"
    assert choice.choose(rates, 800_000, 0.0, 9.0) == "l"
    assert choice.choose(rates, 800_000, 0.0, 10.1) == "m"


def test_loss_makes_the_current_layer_too_big() -> None:
    rates = layers(1_500_000, 500_000, 150_000)
    choice = LayerChoice("h", now=0.0)
    assert choice.choose(rates, 5_000_000, 0.2, 2.0) == "m"


def test_a_layer_that_stops_is_left_at_once() -> None:
    choice = LayerChoice("h", now=0.0)
    assert choice.choose(layers(0, 500_000, 150_000), 5_000_000, 0.0, 0.1) == "m"
    # Nothing sending at all: stay put.
    assert choice.choose(layers(0, 0, 0), None, 0.0, 0.2) == "m"


def test_probe_up_without_room_fails_and_waits_longer_next_time() -> None:
    """A viewer's estimate stays near 1.5x what it receives: on the small layer it never
    shows room for the middle one, so the choice probes after a quiet spell; a probe
    whose estimate never fits goes back down, and the next waits twice as long."""
    rates = layers(1_500_000, 500_000, 150_000)
    choice = LayerChoice("l", now=0.0)
    assert choice.choose(rates, 230_000, 0.0, 7.0) == "l"
    assert choice.choose(rates, 230_000, 0.0, simulcast.PROBE_AFTER + 0.1) == "m"
    began = simulcast.PROBE_AFTER + 0.1
    assert choice.choose(rates, 300_000, 0.0, began + 3) == "m"  # the estimate grows
    assert choice.choose(rates, 300_000, 0.0, began + simulcast.PROBE_HOLD) == "l"
    assert choice.probe_wait == 2 * simulcast.PROBE_AFTER
    after = began + simulcast.PROBE_HOLD
    assert choice.choose(rates, 230_000, 0.0, after + simulcast.PROBE_AFTER + 1) == "l"
    assert choice.choose(rates, 230_000, 0.0, after + 2 * simulcast.PROBE_AFTER + 1) == "m"


def test_probe_that_finds_room_stays_and_a_falling_estimate_ends_it() -> None:
    rates = layers(1_500_000, 500_000, 150_000)
    choice = LayerChoice("l", now=0.0)
    start = simulcast.PROBE_AFTER + 1
    assert choice.choose(rates, 230_000, 0.0, start) == "m"
    assert choice.choose(rates, 600_000, 0.0, start + 4) == "m"  # fits: the probe held
    assert choice.probe is None and choice.probe_wait == simulcast.PROBE_AFTER
    other = LayerChoice("l", now=0.0)
    assert other.choose(rates, 230_000, 0.0, start) == "m"
    assert other.choose(rates, 400_000, 0.0, start + 1) == "m"
    assert other.choose(rates, 250_000, 0.0, start + 2) == "l"  # congestion: back down


class Capture:
    """A viewer's send path that keeps what it is given."""

    def __init__(self) -> None:
        self.rtp: list[bytes] = []

    def send_rtp(self, data: bytes) -> int:
        self.rtp.append(data)
        return 0

    def send_packet(self, template: bytes, seq: int, ts: int, ssrc: int) -> int:
        data = bytearray(template)
        struct.pack_into("!HII", data, 2, seq, ts, ssrc)
        return self.send_rtp(bytes(data))

    def send_rtcp(self, data: bytes) -> bool:
        return True


def _extmap() -> HeaderExtensionsMap:
    extmap = HeaderExtensionsMap()
    extmap.configure(
        RTCRtpSendParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid")
            ]
        )
    )
    return extmap


def _packet(seq: int, ts: int, payload: bytes) -> RtpPacket:
    return RtpPacket(payload_type=102, sequence_number=seq, timestamp=ts, ssrc=1, payload=payload)


def test_switching_layers_keeps_one_continuous_stream() -> None:
    high, low = Stream("video", lambda: None), Stream("video", lambda: None)
    high.new_source("video/h264", 90000)
    low.new_source("video/h264", 90000)
    path = Capture()
    down = DownTrack(high, "viewer")
    down.start(
        ssrc=77,
        cname="c",
        mid="1",
        extmap=_extmap(),
        ext_ids=(1,),
        payload_types={"video/h264": 96},
        rtx_types={"video/h264": 97},
        rtx_ssrc=78,
        path=path,
        first_seq=65530,  # wraps during the test
        first_ts=4_294_960_000,
    )
    t = 100.0
    # The high layer: a keyframe, then frames every 1/30 s (3000 ticks).
    high.on_packet(_packet(1000, 50_000, H264_IDR), t)
    for i in range(1, 5):
        high.on_packet(_packet(1000 + i, 50_000 + 3000 * i, H264_P), t + i / 30)
    assert len(path.rtp) == 5
    down.switch_to(low)
    assert down in low.pending and low.waiting_viewers() == 1
    # Until the low layer's keyframe the viewer keeps the high one, not the low one.
    t += 5 / 30
    low.on_packet(_packet(7000, 9_000_000, H264_P), t)
    high.on_packet(_packet(1005, 65_000, H264_P), t)
    assert len(path.rtp) == 6
    t += 1 / 30
    low.on_packet(_packet(7001, 9_003_000, H264_IDR), t)
    high.on_packet(_packet(1006, 68_000, H264_P), t)  # no longer this viewer's
    low.on_packet(_packet(7002, 9_006_000, H264_P), t + 1 / 30)
    assert down.stream is low and down in low.downtracks and down not in high.downtracks
    sent = [RtpPacket.parse(data, _extmap()) for data in path.rtp]
    assert len(sent) == 8
    seqs = [p.sequence_number for p in sent]
    assert seqs == [(65530 + i) % 65536 for i in range(8)]  # no gap, no repeat
    stamps = [p.timestamp for p in sent]
    steps = [(b - a) % (1 << 32) for a, b in itertools.pairwise(stamps)]
    # The clock runs on across the switch (at the switch, by the time elapsed, to the
    # tick), then at the new layer's own pace.
    assert steps[:5] == [3000] * 5 and abs(steps[5] - 3000) <= 1 and steps[6] == 3000, steps
    assert {p.ssrc for p in sent} == {77}
    # A NACK for a packet sent before the switch is answered from the high layer's
    # cache (its generation), not with the low layer's packet of the same number.
    time.sleep(0.05)  # the viewer's resend budget fills with time (200 a second)
    down.on_rtcp(
        RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=1, media_ssrc=77, lost=[(65530 + 2) % 65536])
    )
    resent = RtpPacket.parse(path.rtp[-1], _extmap())
    assert resent.payload_type == 97 and resent.ssrc == 78
    assert resent.payload[2:] == H264_P and resent.timestamp == stamps[2]
    assert high.generation != low.generation


def test_switch_back_before_the_keyframe_cancels() -> None:
    high, low = Stream("video", lambda: None), Stream("video", lambda: None)
    down = DownTrack(high, "viewer")
    high.downtracks.append(down)
    down.switch_to(low)
    down.switch_to(high)
    assert low.pending == [] and down.target is None
    down.switch_to(low)
    down.stop()
    assert low.pending == [] and down not in high.downtracks


async def test_whip_answer_accepts_a_simulcast_offer() -> None:
    """RFC 9725: a WHIP offer with three rids is answered with them (a=rid recv,
    a=simulcast:recv) and with the rid header extensions, so the browser sends all three;
    an offer without simulcast is answered without."""
    from aiortc import RTCPeerConnection

    from media.aiortc_glue import set_host_addresses
    from media.plane import MediaPlane, MediaSettings

    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"]))
    await plane.start()
    client = RTCPeerConnection()
    try:
        client.addTransceiver("audio", direction="sendonly")
        client.addTransceiver("video", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        plain = client.localDescription.sdp
        lines = plain.split("\r\n")
        video_at = next(i for i, line in enumerate(lines) if line.startswith("m=video"))
        extra = [
            "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
            "a=rid:h send",
            "a=rid:m send",
            "a=rid:l send",
            "a=simulcast:send h;m;l",
        ]
        end = len(lines) - 1 if lines[-1] == "" else len(lines)
        offer = "\r\n".join([*lines[: video_at + 1], *lines[video_at + 1 : end], *extra, ""])
        _session, answer = await plane.publish("1", offer.encode())
        video = answer.split("m=video")[1]
        assert "a=rid:h recv\r\na=rid:m recv\r\na=rid:l recv\r\na=simulcast:recv h;m;l" in video
        assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video
        assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in video
        assert sorted(plane.stats("1")["layers"]) == ["h", "l", "m"]
        _session, answer = await plane.publish("2", plain.encode())
        assert "a=simulcast" not in answer and "rtp-stream-id" not in answer
        assert plane.stats("2")["layers"] == {}
    finally:
        await client.close()
        await plane.close()
        set_host_addresses([])


def test_the_recording_follows_the_largest_layer_sending() -> None:
    """A browser stops its largest layer when its uplink narrows: the recording moves to
    the largest one still sending at its keyframe, and back up at the large one's."""
    asked: list[str] = []
    top = Stream("video", lambda: asked.append("h"))
    layers = simulcast.VideoLayers(top, lambda rid: Stream("video", lambda: asked.append(rid)))
    layers.set_rids(["h", "m", "l"])
    middle = layers.by_rid["m"]
    for stream in layers.by_rid.values():
        stream.new_source("video/h264", 90000)
    t = 10.0
    top.on_packet(_packet(1, 0, H264_IDR), t)
    assert layers.feeds(top, _packet(1, 0, H264_IDR), t)
    middle.on_packet(_packet(5, 0, H264_IDR), t)
    assert not layers.feeds(middle, _packet(5, 0, H264_IDR), t)  # the top one sends
    # The top layer falls silent: the middle one is asked for a keyframe and, at it,
    # recorded.
    t += 1.5
    middle.on_packet(_packet(6, 3000, H264_P), t)
    layers.keep_recording(t)
    assert asked == ["m"]
    assert not layers.feeds(middle, _packet(6, 3000, H264_P), t)
    assert layers.feeds(middle, _packet(7, 6000, H264_IDR), t)
    assert layers.recorded is middle
    # The top layer is back: recorded again from its keyframe on.
    assert not layers.feeds(top, _packet(2, 3000, H264_P), t + 1)
    assert layers.feeds(top, _packet(3, 6000, H264_IDR), t + 1)
    assert layers.recorded is top


def test_layers_rank_by_the_publishers_order_not_their_bitrate() -> None:
    """A browser short of uplink starves its largest layer first: it may carry fewer
    bits than the middle one for a while, and is still the largest picture."""
    starved = layers(60_000, 150_000, 50_000)
    choice = LayerChoice("m", now=0.0)
    assert choice.choose(starved, None, 0.0, 1.0) == "m"  # room only after a while
    assert choice.choose(starved, 5_000_000, 0.0, 2.0) == "m"
    assert choice.choose(starved, 5_000_000, 0.0, 6.1) == "h"
    # Within 100 kbit/s the large layer fits, the middle one does not: still the large.
    assert LayerChoice("h", now=0.0).choose(starved, 100_000, 0.0, 2.0) == "h"


def test_an_estimate_near_what_the_viewer_gets_is_no_reason_to_step_down() -> None:
    """A fresh estimate starts near the rate received and grows from there: only an
    estimate under the current layer's bitrate (or loss) moves the viewer down."""
    rates = layers(1_000_000, 400_000, 120_000)
    choice = LayerChoice("h", now=0.0)
    assert choice.choose(rates, 1_050_000, 0.0, 2.0) == "h"
    assert choice.choose(rates, 950_000, 0.0, 3.0) == "m"


def test_a_probe_whose_estimate_stays_under_the_layer_fails_early() -> None:
    rates = layers(1_500_000, 500_000, 150_000)
    choice = LayerChoice("l", now=0.0)
    start = simulcast.PROBE_AFTER + 1
    assert choice.choose(rates, 200_000, 0.0, start) == "m"
    assert choice.choose(rates, 210_000, 0.0, start + 2) == "m"
    assert choice.choose(rates, 210_000, 0.0, start + simulcast.PROBE_SHORT) == "l"


def test_forwarded_packets_carry_the_relays_send_time() -> None:
    from media.relay import abs_send_time

    stream = Stream("video", lambda: None)
    stream.new_source("video/h264", 90000)
    packet = _packet(1, 0, H264_P)
    packet.extensions.abs_send_time = 12345  # the publisher's clock
    before = abs_send_time()
    stream.on_packet(packet, 1.0)
    forwarded = stream.cache.get(1)
    assert forwarded is not None and forwarded.abs_send_time is not None
    assert (forwarded.abs_send_time - before) % (1 << 24) < (1 << 18)  # within a second
    without = _packet(2, 0, H264_P)
    stream.on_packet(without, 1.0)
    assert stream.cache.get(2).abs_send_time is None  # type: ignore[union-attr]


def test_a_viewer_waiting_on_a_layer_that_stopped_is_moved() -> None:
    """A browser pauses its large layer when its uplink narrows: its bitrate figure
    stays as it was, but a viewer waiting there for a keyframe goes to a layer that
    still sends."""
    top = Stream("video", lambda: None)
    layers = simulcast.VideoLayers(top, lambda rid: Stream("video", lambda: None))
    layers.set_rids(["h", "m"])
    middle = layers.by_rid["m"]
    for stream in (top, middle):
        stream.new_source("video/h264", 90000)
    down = DownTrack(top, "viewer")
    top.downtracks.append(down)
    now = time.monotonic()
    top.on_packet(_packet(1, 0, H264_P), now - 30)
    top.bitrate = 900_000.0  # as last measured, 30 s ago
    middle.on_packet(_packet(1, 0, H264_P), now)
    middle.bitrate = 200_000.0
    layers.steer(down, now)
    assert down.target is middle and down in middle.pending


def test_back_to_the_layer_it_had_to_leave_when_it_returns() -> None:
    choice = LayerChoice("h", now=0.0)
    assert choice.choose(layers(0, 500_000, 150_000), 2_000_000, 0.0, 1.0) == "m"
    # Its estimate now only knows the middle layer; the large one sends again: back.
    rates = layers(1_500_000, 500_000, 150_000)
    assert choice.choose(rates, 700_000, 0.0, 3.0) == "h"
    assert choice.probe is not None  # and it must show room, as any probe
    assert choice.choose(rates, 700_000, 0.0, 3.0 + simulcast.PROBE_SHORT) == "m"
