"""The network lab's viewers give up on a lost packet after a time, as browsers do
(tests/lab_jitter.py), not after aiortc's 512 packets."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from tests.lab_jitter import GivingUpJitterBuffer


def packet(seq: int, timestamp: int) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp)
    p._data = bytes([seq % 256]) * 10  # type: ignore[attr-defined]
    return p


def test_a_packet_lost_for_good_costs_its_frame_after_the_wait_not_512_packets() -> None:
    now = [0.0]
    buffer = GivingUpJitterBuffer(wait=0.5, clock=lambda: now[0])
    frames = []

    def send(seq: int, frame: int) -> bool:
        pli, got = buffer.add(packet(seq, frame * 3000))
        if got is not None:
            frames.append(got.timestamp // 3000)
        return pli

    # Two packets a frame, a frame every 100 ms; packet 5 (frame 2's second) never comes.
    seq = 0
    plis = []
    for frame in range(12):
        for _ in range(2):
            if seq != 5:
                plis.append(send(seq, frame))
            seq += 1
        now[0] += 0.1
    # Frames 0 and 1 came out; frame 2 never can; from frame 3 on the buffer waited.
    assert frames[:2] == [0, 1]
    assert buffer.given_up == 1 and any(plis)
    # After the wait it dropped frame 2 and goes on with frame 3 and the rest.
    assert frames[2:] == list(range(3, 11)), frames
    # aiortc's own buffer would still be waiting: 512 packets at 20 a second is 25 s.


def test_no_hole_no_drop_after_a_pause() -> None:
    now = [0.0]
    buffer = GivingUpJitterBuffer(wait=0.5, clock=lambda: now[0])
    out = []
    for seq in range(6):
        if seq == 4:
            now[0] += 3.0  # the publisher paused; nothing was lost
        _, got = buffer.add(packet(seq, (seq // 2) * 3000))
        if got is not None:
            out.append(got.timestamp)
    assert out == [0, 3000] and buffer.given_up == 0
