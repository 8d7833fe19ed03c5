"""The HLS budget's token bucket and held-request count, on a clock the test moves."""

from __future__ import annotations

from appliance.hls.admission import HELD, RATE, HlsAdmission, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_gives_a_seconds_burst_then_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(20, clock)
    assert sum(bucket.take() for _ in range(50)) == 20  # one second's worth at once
    assert not bucket.take()
    clock.now += 0.25
    assert sum(bucket.take() for _ in range(50)) == 5  # a quarter second: 5 more
    clock.now += 60  # idle for a minute: still at most one second's burst stored
    assert sum(bucket.take() for _ in range(50)) == 20


def test_a_rate_of_zero_never_refuses() -> None:
    bucket = TokenBucket(0, Clock())
    assert all(bucket.take() for _ in range(10_000))


def test_admission_counts_what_it_sheds() -> None:
    clock = Clock()
    admission = HlsAdmission(10, 2, clock)
    answered = sum(admission.admit() for _ in range(15))
    assert answered == 10
    assert admission.shed == {RATE: 5, HELD: 0}
    assert admission.hold() and admission.hold()
    assert not admission.hold()  # both places taken
    assert admission.shed[HELD] == 1
    admission.release()
    assert admission.hold()
    assert admission.held == 2
    unlimited = HlsAdmission(0, 0, clock)
    assert all(unlimited.hold() for _ in range(100)) and unlimited.shed == {RATE: 0, HELD: 0}


async def test_the_gate_answers_503_before_the_app_only_for_hls_over_the_rate() -> None:
    from typing import Any

    from appliance.hls.admission import HlsGate

    reached: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    gate = HlsGate(app, HlsAdmission(2, 0, Clock()))
    for path, method in [
        ("/hls/1/index.m3u8", "GET"),
        ("/hls/1/index.m3u8", "GET"),
        ("/hls/1/index.m3u8", "OPTIONS"),  # preflights pass, uncounted
        ("/shows/1", "GET"),  # not HLS: never shed
        ("/hls/1/e/p3.m4s", "GET"),  # the third: over the rate
    ]:
        await gate({"type": "http", "path": path, "method": method}, receive, send)
    assert reached == ["/hls/1/index.m3u8"] * 3 + ["/shows/1"]
    assert sent[0]["status"] == 503
    headers = dict(sent[0]["headers"])
    assert headers[b"retry-after"] == b"1" and headers[b"cache-control"] == b"no-store"
    assert gate.admission.shed[RATE] == 1
