"""The bandwidth Vitrine tells a publisher it may use (REMB), from what arrives.

aiortc's estimator (Google's delay-based one, `aiortc.rate.RemoteBitrateEstimator`)
reacts to a *change* in queueing delay: when a phone starts above its uplink's rate,
the estimate falls once, to about what the link carries, and then holds. The queue
built meanwhile never drains: the sender now runs at the link's rate, the delay no
longer grows, so nothing is "overusing", and viewers stay seconds behind (issue 17:
5.5 s on a 900 kbit/s uplink). Its decrease is also computed from the video's own
rate, while the audio and retransmissions share the same link.

So the relay also measures the standing queue itself: each packet's one-way delay
(arrival time minus the sender's abs-send-time) above the lowest seen lately is
time spent queued on the way. While that queue is above QUEUE_LIMIT, the estimate is
cut to CUT times the video actually arriving, divided by (1 + the queue in seconds),
so the sender goes under the link's rate and the queue drains. A queue still standing
after a cut is the old one draining, not a new one: the next cut waits until the queue
should have drained at the cut rate (`drain_time`, plus the sender's REACTION), unless
the queue keeps growing past REGROW more than it was. Once the queue has drained the
cap rises again (RISE a second) to NEAR the rate the link carried while the queue
stood, then slowly (RISE_NEAR), probing, so the sender does not refill the link every
few seconds. The delay-based estimate, when lower, still wins: the figure sent is the
lower of the two.
"""

from __future__ import annotations

from collections import deque

from aiortc.rate import RemoteBitrateEstimator

QUEUE_LIMIT = 0.15  # seconds of standing queue that call for a cut
PERSIST = 0.3  # seconds the queue must stay above the limit: a burst is not a queue, nor
# a stall of the server's own loop where the kernel gives no arrival times (packets
# waiting in its socket; media/aiortc_glue.py's KernelArrivals takes those out)
CUT = 0.85
CUT_INTERVAL = 0.5  # seconds between two cuts: let the last one take effect
REACTION = 0.3  # seconds for a cut to reach the sender and its encoder to follow it
REGROW = 0.3  # seconds the queue may grow past its level at the last cut while that cut
# takes effect (a sender that restarts its encoder sends a keyframe first)
RISE = 1.05  # per second, while the queue is low
NEAR = 0.85  # of the link's rate last measured under a queue: from there the cap rises
RISE_NEAR = 1.005  # per second only, probing: the last queue came from just above it
FORGET = 1.2  # the cap this far above that rate, with no queue: the link got better
MAX_DRAIN_WAIT = 2.0  # seconds: the longest a cut waits for the queue to drain
REPORT_INTERVAL = 0.5  # a REMB at least this often
BASE_WINDOW = 10.0  # seconds per bucket of the lowest-delay memory (3 buckets)
RATE_WINDOW = 1.0  # seconds over which the arriving rate is measured
FLOOR = 150_000  # never ask a publisher for less than this (bits per second)
ABS_SEND_TIME_WRAP = 64.0  # abs-send-time is 6.18 fixed-point seconds, 24 bits


class UplinkEstimator:
    """Drop-in for aiortc's RemoteBitrateEstimator in a forwarding receiver."""

    def __init__(self) -> None:
        self.delay_based = RemoteBitrateEstimator()
        self.delay_estimate: int | None = None
        self.cap: float | None = None
        self.queue = 0.0  # seconds, the last packet's standing queue
        self.cuts = 0
        self._last_cut = float("-inf")
        self._cut_queue = 0.0  # the standing queue when the last cut was made
        self._drained_by = float("-inf")  # when that queue should be gone at the cut rate
        # What the link carried while the last queue stood (bits per second), if known.
        self.capacity: float | None = None
        self._queued_since: float | None = None
        self._last_rise: float | None = None
        self._last_report = float("-inf")
        self._send_base: float | None = None  # unwrapped abs-send-time, seconds
        self._last_send: float | None = None
        self._mins: deque[tuple[float, float]] = deque()  # (bucket start, lowest offset)
        self._arrivals: deque[tuple[float, int]] = deque()  # (arrival, bytes)
        self._arrived_bytes = 0
        self._first_arrival: float | None = None
        self._ssrcs: dict[int, None] = {}

    # -- measures --------------------------------------------------------------------

    def _send_seconds(self, abs_send_time: int) -> float:
        value = abs_send_time / (1 << 18)
        if self._last_send is None:
            self._send_base = 0.0
        elif value < self._last_send - ABS_SEND_TIME_WRAP / 2:
            self._send_base = (self._send_base or 0.0) + ABS_SEND_TIME_WRAP
        elif value > self._last_send + ABS_SEND_TIME_WRAP / 2:
            # A late packet sent before the last wrap.
            return value + (self._send_base or 0.0) - ABS_SEND_TIME_WRAP
        self._last_send = value
        return value + (self._send_base or 0.0)

    def _standing_queue(self, now: float, offset: float) -> float:
        mins = self._mins
        if not mins or now - mins[-1][0] >= BASE_WINDOW:
            mins.append((now, offset))
            while len(mins) > 3:
                mins.popleft()
        elif offset < mins[-1][1]:
            mins[-1] = (mins[-1][0], offset)
        return offset - min(m for _, m in mins)

    def _rise(self, now: float) -> float:
        """The cap's growth a second: quick until what arrives is back NEAR the rate the
        link carried under the last queue, then slow, so that the next queue (and cut)
        comes much later. What arrives, not the cap: a sender overshoots what it is told
        (keyframes, resends), and it is what arrives that fills the link."""
        capacity = self.capacity
        if capacity is None or self.arriving_rate(now) < NEAR * capacity:
            return RISE
        return RISE_NEAR

    def drain_time(self, arriving: float, rate: float) -> float:
        """Seconds for today's standing queue to drain once the sender sends `rate`. While
        a queue stands, what arrives is about what the link carries; the queue drains at
        the difference. A second cut before then would answer the first one's queue."""
        spare = arriving - rate
        if spare <= 0:
            return 0.0
        return min(self.queue * arriving / spare, MAX_DRAIN_WAIT)

    def arriving_rate(self, now: float) -> float:
        """Bits per second of this stream reaching the relay, over RATE_WINDOW."""
        arrivals = self._arrivals
        while arrivals and now - arrivals[0][0] > RATE_WINDOW:
            self._arrived_bytes -= arrivals.popleft()[1]
        if self._first_arrival is None or now - self._first_arrival < RATE_WINDOW / 2:
            return 0.0  # too early to tell
        span = min(RATE_WINDOW, now - self._first_arrival)
        return self._arrived_bytes * 8 / span

    # -- the estimator's interface ---------------------------------------------------

    def add(
        self,
        arrival_time_ms: int,
        abs_send_time: int,
        payload_size: int,
        ssrc: int,
        retransmission: bool = False,
    ) -> tuple[int, list[int]] | None:
        """Note one packet; return (bitrate, ssrcs) when a REMB should be sent."""
        now = arrival_time_ms / 1000
        if self._first_arrival is None:
            self._first_arrival = now
        self._arrivals.append((now, payload_size))
        self._arrived_bytes += payload_size
        if retransmission:
            # Its abs-send-time may be the original packet's (aiortc resends with it): no
            # use for the delay. Its bytes did cross the link, though: a browser pads on
            # its RTX stream to show the link carries its next simulcast layer, and the
            # delay-based estimate never rises past 1.5 times the rate it counts, so a
            # browser sending only its smallest layer would be held there.
            self.delay_based.incoming_bitrate.add(payload_size, arrival_time_ms)
            return None
        self._ssrcs[ssrc] = None
        remb = self.delay_based.add(
            arrival_time_ms=arrival_time_ms,
            abs_send_time=abs_send_time,
            payload_size=payload_size,
            ssrc=ssrc,
        )
        if remb is not None:
            self.delay_estimate = remb[0]
        self.queue = self._standing_queue(now, now - self._send_seconds(abs_send_time))
        changed = False
        if self.queue > QUEUE_LIMIT:
            self._last_rise = None
            if self._queued_since is None:
                self._queued_since = now
            if (
                now - self._queued_since >= PERSIST
                and now - self._last_cut >= CUT_INTERVAL
                and (now >= self._drained_by or self.queue > self._cut_queue + REGROW)
            ):
                arriving = self.arriving_rate(now)
                if arriving > 0:
                    base = arriving if self.cap is None else min(self.cap, arriving)
                    # The deeper the queue, the deeper the cut: one step that drains it
                    # beats several small ones (each makes the sender's encoder restart,
                    # and a restart is a keyframe, the biggest thing it sends).
                    self.cap = max(FLOOR, base * CUT / (1 + self.queue))
                    self._last_cut = now
                    self._cut_queue = self.queue
                    self.capacity = arriving
                    self._drained_by = now + REACTION + self.drain_time(arriving, self.cap)
                    self.cuts += 1
                    changed = True
        else:
            self._queued_since = None
        if self.cap is not None and self.queue < QUEUE_LIMIT / 2:
            if self._last_rise is None:
                self._last_rise = now
            elif now - self._last_rise >= 1.0:
                self.cap *= self._rise(now) ** (now - self._last_rise)
                self._last_rise = now
                if self.capacity is not None and self.cap > FORGET * self.capacity:
                    self.capacity = None
                if self.delay_estimate is not None and self.cap > 2 * self.delay_estimate:
                    self.cap = None  # far above: the delay-based estimate rules again
        if not changed and remb is None and now - self._last_report < REPORT_INTERVAL:
            return None
        estimate = self.estimate
        if estimate is None:
            return None
        self._last_report = now
        return estimate, list(self._ssrcs)

    @property
    def estimate(self) -> int | None:
        figures = [f for f in (self.delay_estimate, self.cap) if f is not None]
        return int(min(figures)) if figures else None
