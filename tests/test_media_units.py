"""The relay's pure parts: keyframe detection, rewriting, the packet cache, SDP checks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.candidates import announce_public_ip
from media.keyframes import h264_is_keyframe, is_keyframe, vp8_is_keyframe
from media.offers import BadOffer, check_offer
from media.packetcache import PacketCache
from media.rewrite import SEQ_MOD, SequenceRewriter


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0x65, 0x88]), True),  # single NAL, IDR
        (bytes([0x67, 0x42]), True),  # single NAL, SPS
        (bytes([0x41, 0x9A]), False),  # single NAL, non-IDR slice
        (bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]), True),  # STAP-A: SPS, PPS
        (bytes([0x78, 0x00, 0x02, 0x68, 0xCE]), False),  # STAP-A with PPS only
        (bytes([0x78, 0x00, 0x09, 0x67]), True),  # STAP-A truncated after the NAL header
        (bytes([0x78, 0x00]), False),  # STAP-A too short
        (bytes([0x7C, 0x85, 0x00]), True),  # FU-A start of an IDR
        (bytes([0x7C, 0x05, 0x00]), False),  # FU-A middle of an IDR
        (bytes([0x7C, 0x81, 0x00]), False),  # FU-A start of a non-IDR slice
        (bytes([0x7C]), False),  # FU-A truncated
        (b"", False),
    ],
)
def test_h264_keyframes(payload: bytes, expected: bool) -> None:
    assert h264_is_keyframe(payload) is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes([0x10, 0x00]), True),  # S=1, PID=0, P=0
        (bytes([0x10, 0x01]), False),  # inter frame
        (bytes([0x00, 0x00]), False),  # not the start of a partition
        (bytes([0x11, 0x00]), False),  # partition 1
        (bytes([0x90, 0x80, 0x05, 0x00]), True),  # X, I with a 7-bit picture id
        (bytes([0x90, 0x80, 0x85, 0x01, 0x00]), True),  # 15-bit picture id
        (bytes([0x90, 0xE0, 0x85, 0x01, 0x07, 0x20, 0x01]), False),  # I L T, inter
        (bytes([0x90, 0xE0, 0x85, 0x01, 0x07, 0x20, 0x00]), True),
        (bytes([0x90, 0x80]), False),  # truncated picture id
        (bytes([0x90]), False),
        (b"", False),
    ],
)
def test_vp8_keyframes(payload: bytes, expected: bool) -> None:
    assert vp8_is_keyframe(payload) is expected


@given(st.binary(max_size=64))
def test_keyframe_detection_never_raises(payload: bytes) -> None:
    for codec in ("video/h264", "video/vp8", "audio/opus"):
        assert is_keyframe(codec, payload) in (True, False)


def test_rewriter_keeps_one_continuous_stream() -> None:
    r = SequenceRewriter(first_seq=65530, first_ts=1000, clock_rate=90000)
    out = [r.rewrite(s, 5000 + 3000 * i, now=i / 30) for i, s in enumerate(range(100, 110))]
    assert [s for s, _ in out] == [(65530 + i) % SEQ_MOD for i in range(10)]
    assert [t for _, t in out] == [1000 + 3000 * i for i in range(10)]
    # A new publisher: unrelated numbers, 0.5 s later. The viewer sees no jump.
    r.reanchor()
    seq, ts = r.rewrite(40000, 123, now=9 / 30 + 0.5)
    assert seq == (65530 + 10) % SEQ_MOD
    assert ts == 1000 + 3000 * 9 + 45000
    seq2, ts2 = r.rewrite(40001, 123 + 3000, now=9 / 30 + 0.5 + 1 / 30)
    assert (seq2, ts2) == ((seq + 1) % SEQ_MOD, ts + 3000)
    # A reordered (older) packet keeps its place and does not rewind the counter.
    late = r.rewrite(39999, 0, now=1.0)[0]
    assert late == (seq - 1) % SEQ_MOD
    assert r.rewrite(40002, 0, now=1.1)[0] == (seq2 + 1) % SEQ_MOD


def test_unsent_numbers_are_reused() -> None:
    r = SequenceRewriter(100, 0, 90000)
    assert r.rewrite(7, 10, 0.0)[0] == 100
    dropped, ts = r.rewrite(8, 10, 0.0)
    r.unsend(dropped)
    assert r.source_of(dropped) is None
    assert r.rewrite(9, 10, 0.0) == (101, ts)  # same frame, same timestamp, no gap
    assert r.rewrite(10, 3010, 0.1)[0] == 102


def test_rewriter_remembers_sources_for_nacks() -> None:
    r = SequenceRewriter(0, 0, 90000)
    sent = [r.rewrite(500 + i, i, 0.0, generation=3)[0] for i in range(5)]
    assert r.source_of(sent[2]) == (502, 3)
    assert r.source_of(999) is None
    for i in range(2000):  # the ring forgets old packets
        r.rewrite(600 + i, i, 0.0, generation=3)
    assert r.source_of(sent[2]) is None


@given(st.lists(st.integers(min_value=0, max_value=SEQ_MOD - 1), min_size=1, max_size=200))
def test_rewriter_output_stays_in_range(seqs: list[int]) -> None:
    r = SequenceRewriter(12345, 99, 48000)
    for i, s in enumerate(seqs):
        if i % 17 == 0:
            r.reanchor()
        seq, ts = r.rewrite(s, s * 960, now=i * 0.02)
        assert 0 <= seq < SEQ_MOD and 0 <= ts < 1 << 32


def test_packet_cache_ring() -> None:
    cache: PacketCache[str] = PacketCache(4)
    for seq in range(6):
        cache.put(seq, f"p{seq}")
    assert cache.get(5) == "p5" and cache.get(2) == "p2"
    assert cache.get(1) is None  # overwritten by 5
    cache.clear()
    assert cache.get(5) is None


def test_public_ip_is_announced_beside_host_candidates() -> None:
    sdp = (
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        "a=candidate:abc 1 udp 2130706431 10.0.0.5 40001 typ host\r\n"
        "a=candidate:def 1 udp 1694498815 1.2.3.4 40001 typ srflx raddr 10.0.0.5 rport 40001\r\n"
    )
    out = announce_public_ip(sdp, "203.0.113.7")
    assert "a=candidate:abcp 1 udp 2130706430 203.0.113.7 40001 typ host\r\n" in out
    assert out.count("a=candidate:") == 3 and "\r\r" not in out
    assert announce_public_ip(sdp, "") == sdp


def test_offer_checks() -> None:
    with pytest.raises(BadOffer, match="larger than"):
        check_offer(b"v=0" + b"x" * 70_000, "publish")
    with pytest.raises(BadOffer, match="not UTF-8"):
        check_offer(b"v=0\xff\xfe", "publish")
    with pytest.raises(BadOffer, match="must start with v=0"):
        check_offer(b"<html>", "publish")
