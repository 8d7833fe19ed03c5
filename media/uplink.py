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
at most every CUT_INTERVAL, so the sender goes under the link's rate and the queue
drains; once it has drained the cap rises again slowly (RISE a second), probing, and
the delay-based estimate, when lower, still wins. The figure sent is the lower of the
two.
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
RISE = 1.05  # per second, while the queue is low
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
            if now - self._queued_since >= PERSIST and now - self._last_cut >= CUT_INTERVAL:
                arriving = self.arriving_rate(now)
                if arriving > 0:
                    base = arriving if self.cap is None else min(self.cap, arriving)
                    # The deeper the queue, the deeper the cut: one step that drains it
                    # beats several small ones (each makes the sender's encoder restart,
                    # and a restart is a keyframe, the biggest thing it sends).
                    self.cap = max(FLOOR, base * CUT / (1 + self.queue))
                    self._last_cut = now
                    self.cuts += 1
                    changed = True
        else:
            self._queued_since = None
        if self.cap is not None and self.queue < QUEUE_LIMIT / 2:
            if self._last_rise is None:
                self._last_rise = now
            elif now - self._last_rise >= 1.0:
                self.cap *= RISE ** (now - self._last_rise)
                self._last_rise = now
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
