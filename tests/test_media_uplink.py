"""The relay's side of a publisher's uplink, as pure units: which lost packets it asks
for again (media/nack.py) and the bandwidth it tells the publisher (media/uplink.py).
The same behaviour end to end, on an emulated 900 kbit/s lossy uplink, is
tests/test_networks.py::test_narrow_lossy_uplink_keeps_the_delay_bounded."""

from __future__ import annotations

from media.nack import MAX_AGE, MAX_TRIES, UpstreamNacks
from media.uplink import CUT, CUT_INTERVAL, FLOOR, NEAR, QUEUE_LIMIT, UplinkEstimator


def test_a_lost_packet_is_asked_for_at_once_and_not_again_before_the_round_trip() -> None:
    nacks = UpstreamNacks(1)
    nacks.received(100, 0.0)
    nacks.received(103, 0.01)  # 101 and 102 lost
    assert nacks.due(0.01) == [101, 102]
    # More losses later do not ask again for 101 and 102 within the round trip.
    nacks.received(105, 0.02)
    assert nacks.due(0.02) == [104]
    assert nacks.due(0.05) == []
    # After 1.5 round trips (100 ms at first) they are asked for again.
    assert nacks.due(0.2) == [101, 102, 104]


def test_recovered_packets_leave_and_teach_the_round_trip() -> None:
    nacks = UpstreamNacks(1)
    nacks.received(10, 0.0)
    nacks.received(12, 0.0)
    assert nacks.due(0.0) == [11]
    nacks.received(11, 0.3)  # its retransmission, 300 ms later
    assert nacks.missing == [] and nacks.recovered == 1
    assert 0.1 < nacks.rtt < 0.3  # moved toward 300 ms
    nacks.received(14, 1.0)
    assert nacks.due(1.0) == [13]
    # With a longer round trip, the next ask waits longer than 1.5 x 100 ms.
    assert nacks.due(1.16) == []


def test_a_packet_is_given_up_after_max_tries_or_when_too_old() -> None:
    nacks = UpstreamNacks(1)
    nacks.received(1, 0.0)
    nacks.received(3, 0.0)
    now, asks = 0.0, 0
    while nacks.missing and now < 5:
        asks += len(nacks.due(now))
        now += 0.01
    assert asks == MAX_TRIES and nacks.given_up == 1
    old = UpstreamNacks(1)
    old.received(1, 0.0)
    old.received(3, 0.0)
    old.due(0.0)
    assert old.due(MAX_AGE + 0.01) == [] and old.given_up == 1


def test_reordered_and_jumping_sequences() -> None:
    nacks = UpstreamNacks(1)
    nacks.received(65534, 0.0)
    nacks.received(1, 0.0)  # across the wrap: 65535 and 0 missing
    assert sorted(nacks.due(0.0)) == [0, 65535]
    nacks.received(0, 0.001)  # merely late
    assert nacks.missing == [65535]
    nacks.received(30000, 0.002)  # a restart, not 30 000 losses: nothing to ask for
    assert nacks.missing == [] and nacks.lost == 2
    nacks.received(30002, 0.003)
    assert nacks.due(0.003) == [30001]


def feed(
    estimator: UplinkEstimator,
    seconds: float,
    send_rate: float,
    link_rate: float,
    start: float = 0.0,
    queue: float = 0.0,
) -> tuple[list[int], float]:
    """Packets of 1000 bytes sent at `send_rate` bits/s through a link of `link_rate`:
    the queue grows when the sender is faster. Returns the REMBs sent and the queue."""
    rembs: list[int] = []
    interval = 8000 / send_rate
    service = 8000 / link_rate
    t = start
    while t < start + seconds:
        queue = max(queue - interval, 0.0) + service
        arrival = t + 0.02 + queue
        abs_send = int(t * (1 << 18)) & 0xFFFFFF
        out = estimator.add(int(arrival * 1000), abs_send, 1000, 1234)
        if out is not None:
            rembs.append(out[0])
            assert out[1] == [1234]
        t += interval
    return rembs, queue


def test_a_standing_queue_cuts_the_estimate_under_what_arrives() -> None:
    """A sender at 1 Mbit/s into a 900 kbit/s link: the queue grows; the estimate is cut
    to a fraction of what arrives (about the link's rate), well under 900 kbit/s."""
    estimator = UplinkEstimator()
    rembs, queue = feed(estimator, 4.0, 1_000_000, 900_000)
    assert queue > QUEUE_LIMIT and estimator.cuts >= 1
    assert rembs and rembs[-1] <= 900_000 * CUT * 1.05
    assert min(rembs) >= FLOOR


def test_no_queue_no_cut_and_the_cap_rises_again() -> None:
    estimator = UplinkEstimator()
    feed(estimator, 3.0, 500_000, 2_000_000)
    assert estimator.cuts == 0 and estimator.cap is None
    # Overfill, then send well under the link: the cap, once cut, grows back.
    _, queue = feed(estimator, 3.0, 2_500_000, 2_000_000, start=3.0)
    cut = estimator.cap
    assert cut is not None
    feed(estimator, 6.0, 600_000, 2_000_000, start=6.0, queue=queue)
    assert estimator.cap is None or estimator.cap > cut


def test_retransmissions_count_as_load_but_not_as_delay() -> None:
    estimator = UplinkEstimator()
    for i in range(100):
        # A retransmission carries its original (old) abs-send-time.
        estimator.add(1000 + i * 10, 0, 1000, 99, retransmission=True)
    assert estimator.queue == 0.0 and estimator.estimate is None
    assert estimator.arriving_rate(1.99) > 0


def test_a_short_stall_is_not_a_standing_queue() -> None:
    """The server's own loop stalled 250 ms: the packets waiting in its socket arrive
    late all at once. That is not the link; no cut."""
    estimator = UplinkEstimator()
    feed(estimator, 3.0, 1_000_000, 2_000_000)
    for i in range(25):  # sent every 10 ms during the stall, all read at its end
        sent = 3.0 + i * 0.01
        estimator.add(int((3.25 + i * 0.0001) * 1000), int(sent * (1 << 18)) & 0xFFFFFF, 1000, 1234)
    feed(estimator, 2.0, 1_000_000, 2_000_000, start=3.25)
    assert estimator.cuts == 0 and estimator.cap is None


def test_a_packet_already_had_is_of_no_use() -> None:
    """A browser pads its RTX stream with resends of packets nobody asked for: the
    receiver drops those (media/aiortc_glue.py) instead of forwarding duplicates."""
    nacks = UpstreamNacks(1)
    assert nacks.received(10, 0.0)
    assert nacks.received(12, 0.0)  # 11 missing
    assert not nacks.received(12, 0.01)  # twice
    assert not nacks.received(9, 0.01)  # before the first, never missing
    assert nacks.received(11, 0.02)  # the missing one: a repair
    assert not nacks.received(11, 0.03)  # and again


def test_resent_bytes_let_the_estimate_grow_past_the_media() -> None:
    """The delay-based estimate never rises past 1.5 times the rate it counts. A browser
    sending only its smallest layer (150 kbit/s) pads its RTX stream to show the link
    carries more: counted, those bytes let the estimate grow toward the next layer."""

    def run(padding: bool) -> int | None:
        estimator = UplinkEstimator()
        t = 0.0
        while t < 30.0:
            sent = int(t * (1 << 18)) & 0xFFFFFF
            estimator.add(int((t + 0.02) * 1000), sent, 625, 1)  # 150 kbit/s of media
            if padding:
                for _ in range(4):  # 600 kbit/s of padding, fresh send times
                    estimator.add(int((t + 0.02) * 1000), sent, 625, 2, retransmission=True)
            t += 1 / 30
        return estimator.estimate

    alone, padded = run(False), run(True)
    assert alone is not None and alone < 1.5 * 150_000 + 10_000 + 1000, alone
    assert padded is not None and padded > 400_000, (alone, padded)


def test_a_cut_waits_for_its_queue_to_drain_before_another() -> None:
    """A sender 20 % over a 3.5 Mbit/s link builds a queue and is cut; it then sends a
    little under the link (slower than told, as an encoder is): the queue drains, but
    stays over QUEUE_LIMIT past CUT_INTERVAL. That is the first cut's queue going, not a
    new one: no second cut (which would take the sender to a fraction of the link)."""
    estimator = UplinkEstimator()
    link = 3_500_000
    t = 0.0
    queue = 0.0
    while estimator.cuts == 0 and t < 3.0:
        _, queue = feed(estimator, 0.05, 4_200_000, link, start=t, queue=queue)
        t += 0.05
    assert estimator.cuts == 1 and estimator.capacity is not None
    cut = estimator.cap
    assert cut is not None
    still_queued = False
    for _ in range(30):  # 1.5 s at 3.2 Mbit/s: the queue drains at 0.3 Mbit/s
        _, queue = feed(estimator, 0.05, 3_200_000, link, start=t, queue=queue)
        t += 0.05
        still_queued |= estimator.queue > QUEUE_LIMIT and t > 1.0 + CUT_INTERVAL
    assert still_queued  # the old rule (a cut every CUT_INTERVAL) would have cut again
    assert estimator.cuts == 1 and estimator.cap is not None and estimator.cap >= cut


def test_a_queue_that_keeps_growing_is_cut_again() -> None:
    """A sender that ignores the REMB: the queue grows past its level at the cut, and
    the relay cuts again without waiting out the drain time."""
    estimator = UplinkEstimator()
    rembs, _ = feed(estimator, 3.0, 2_000_000, 1_000_000)
    assert estimator.cuts >= 3, rembs


def test_after_a_cut_the_cap_climbs_fast_then_slowly_near_the_link() -> None:
    """Once the queue has drained the cap climbs at RISE a second while what arrives is
    under NEAR the rate the link carried under the queue, then at RISE_NEAR only: a
    sender following it refills the link much later."""
    estimator = UplinkEstimator()
    link = 2_000_000
    _, queue = feed(estimator, 3.0, 2_500_000, link)
    assert estimator.cuts >= 1 and estimator.capacity is not None
    capacity = estimator.capacity
    assert 0.9 * link < capacity <= 1.05 * link
    _, queue = feed(estimator, 3.0, 600_000, link, start=3.0, queue=queue)  # drained

    def growth(rate: float, start: float) -> float:
        feed(estimator, 1.5, rate, link, start=start)  # the arriving rate's window fills
        assert estimator.cap is not None
        before = estimator.cap
        feed(estimator, 4.0, rate, link, start=start + 1.5)
        assert estimator.cap is not None and estimator.capacity == capacity
        return (estimator.cap / before) ** (1 / 4.0)

    low = growth(0.5 * capacity, 6.0)  # far under the link: quick
    near = growth(0.95 * NEAR * capacity + 0.05 * capacity, 11.5)  # about NEAR: slow
    assert low > 1.03, low
    assert near < 1.01, near
