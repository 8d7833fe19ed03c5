"""The KPI engine (appliance.kpis.engine.compute): hand-computed scenarios, then invariants."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.kpis.engine import compute


def ev(ts: float, viewer: str, kind: str, **props: Any) -> dict[str, Any]:
    return {"ts": ts, "viewer": viewer, "kind": kind, "props": props}


def test_nothing_happened_gives_zeros() -> None:
    k = compute([], 0.0, 600.0)
    assert k["viewers"] == 0 and k["peak_concurrent"] == 0
    assert k["avg_watch_seconds"] == 0 and k["attention_rate"] == 0
    assert k["engagement_rate"] == 0 and k["conversion_rate"] == 0 and k["average_cart"] == 0
    assert k["timeline"]["concurrent"] == [0] * 10


def test_join_heartbeats_and_leave() -> None:
    events = [ev(0, "a", "join"), ev(15, "a", "heartbeat"), ev(30, "a", "heartbeat")]
    events.append(ev(40, "a", "leave"))
    k = compute(events, 0, 100)
    assert k["viewers"] == 1
    assert k["avg_watch_seconds"] == pytest.approx(40)
    assert k["attention_rate"] == pytest.approx(0.4)
    assert k["viewers_over_1min"] == 0


def test_overlapping_and_duplicate_heartbeats_count_once() -> None:
    events = [ev(0, "a", "join"), ev(10, "a", "heartbeat"), ev(10, "a", "heartbeat")]
    events.append(ev(20, "a", "heartbeat"))
    k = compute(events, 0, 100)
    assert k["avg_watch_seconds"] == pytest.approx(35)  # [0, 35)


def test_leave_before_the_heartbeat_expires_and_rejoin() -> None:
    events = [ev(0, "a", "join"), ev(5, "a", "leave"), ev(50, "a", "join")]
    k = compute(events, 0, 100)
    assert k["avg_watch_seconds"] == pytest.approx(5 + 15)


def test_viewers_who_join_before_the_show_and_after_it() -> None:
    early = [ev(-20, "early", "join"), ev(-5, "early", "heartbeat"), ev(10, "early", "heartbeat")]
    late = [ev(110, "late", "join"), ev(115, "late", "replay_view")]
    k = compute(early + late, 0, 100)
    assert k["viewers"] == 1  # the late one never watched the live
    assert k["avg_watch_seconds"] == pytest.approx(25)  # [0, 10) and [10, 25)
    assert k["replay_views"] == 1 and k["replay_viewers"] == 1


def test_watch_time_is_clipped_to_the_end_of_the_live() -> None:
    k = compute([ev(95, "a", "join")], 0, 100)
    assert k["avg_watch_seconds"] == pytest.approx(5)


def test_peak_concurrent_uses_half_open_intervals() -> None:
    one_after_other = [ev(0, "a", "join"), ev(15, "a", "leave"), ev(15, "b", "join")]
    assert compute(one_after_other, 0, 100)["peak_concurrent"] == 1
    overlapping = [ev(0, "a", "join"), ev(10, "b", "join"), ev(20, "c", "join")]
    k = compute(overlapping, 0, 100)
    assert k["peak_concurrent"] == 2  # a left at 15, c came at 20
    assert k["viewers"] == 3


def test_engagement_chat_and_likes() -> None:
    events = [ev(0, v, "join") for v in ("a", "b", "c")]
    events += [ev(1, "a", "chat"), ev(2, "a", "chat"), ev(3, "b", "like", count=5)]
    events += [ev(4, "b", "like")]  # no count: one like
    events += [ev(5, "ghost", "chat")]  # chats without ever being counted as a viewer
    k = compute(events, 0, 100)
    assert k["chat_messages"] == 3 and k["chatters"] == 2
    assert k["chat_user_rate"] == pytest.approx(1 / 3)
    assert k["likes"] == 6
    assert k["engagement_rate"] == pytest.approx(2 / 3)


def test_duplicated_orders_count_once_and_split_live_and_replay() -> None:
    events = [ev(0, "a", "join"), ev(0, "b", "join")]
    events += [ev(10, "a", "add_to_cart", product="7", quantity=1, price=1000)]
    events += [ev(20, "a", "purchase", order="A1", amount=1000)]
    events += [ev(21, "a", "purchase", order="A1", amount=1000)]  # the shop retried
    events += [ev(30, "b", "purchase", order="B1", amount=500, products=["8"])]
    events += [
        ev(150, "c", "add_to_cart", product="7"),
        ev(160, "c", "purchase", order="C1", amount=200),
    ]
    k = compute(events, 0, 100)
    assert k["orders"] == 2 and k["revenue"] == 1500 and k["average_cart"] == 750
    assert k["conversion_rate"] == 1.0
    assert k["add_to_cart"] == 1 and k["unique_carts"] == 1
    assert k["replay_add_to_cart"] == 1 and k["replay_orders"] == 1 and k["replay_revenue"] == 200
    assert k["products"]["7"] == {
        "clicks": 0,
        "add_to_cart": 1,
        "orders": 1,
        "replay_add_to_cart": 1,
        "replay_orders": 1,
    }
    assert k["products"]["8"]["orders"] == 1


def test_channels_devices_and_calendar() -> None:
    events = [
        ev(-600, "a", "calendar_add"),
        ev(0, "a", "join", device="mobile", channel="instagram"),
        ev(50, "a", "join", device="desktop", channel="direct"),  # the first join counts
        ev(0, "b", "join", device="desktop", channel="direct"),
        ev(0, "c", "join", device="mobile", channel="instagram"),
        ev(0, "d", "heartbeat"),  # no join seen
        ev(200, "e", "calendar_add"),  # after the show: not counted
    ]
    k = compute(events, 0, 100)
    assert k["channels"] == {"instagram": 2, "direct": 1, "unknown": 1}
    assert k["devices"] == {"mobile": 2, "desktop": 1, "unknown": 1}
    assert k["mobile_viewers"] == 2
    assert k["calendar_adds"] == 1


def test_timeline_per_minute() -> None:
    events = [ev(0, "a", "join")]
    events += [ev(t, "a", "heartbeat") for t in range(15, 180, 15)]
    events += [ev(70, "b", "join"), ev(61, "a", "chat"), ev(62, "a", "like", count=3)]
    k = compute(events, 0, 180)
    assert k["timeline"]["concurrent"] == [1, 2, 1]
    assert k["timeline"]["chat"] == [0, 1, 0]
    assert k["timeline"]["likes"] == [0, 3, 0]
    assert k["viewers_over_1min"] == 1


# -- invariants ---------------------------------------------------------------------------

KINDS = ["join", "heartbeat", "leave", "chat", "like", "product_click", "add_to_cart"]
KINDS += ["purchase", "calendar_add", "replay_view"]

events_strategy = st.lists(
    st.builds(
        lambda ts, viewer, kind, count, order, amount, product: ev(
            ts,
            viewer,
            kind,
            count=count,
            order=order,
            amount=amount,
            product=product,
            device=random.Random(viewer).choice(["mobile", "desktop", "tablet"]),
        ),
        st.floats(-200, 800, allow_nan=False),
        st.sampled_from([f"v{i}" for i in range(8)]),
        st.sampled_from(KINDS),
        st.integers(1, 20),
        st.sampled_from(["o1", "o2", "o3", "o4"]),
        st.integers(0, 100_000),
        st.sampled_from(["1", "2", "3"]),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    events=events_strategy,
    start=st.floats(0, 300, allow_nan=False),
    length=st.floats(0, 600, allow_nan=False),
    h=st.floats(1, 60, allow_nan=False),
)
def test_invariants(events: list[dict[str, Any]], start: float, length: float, h: float) -> None:
    end = start + length
    k = compute(events, start, end, h)
    assert 0 <= k["peak_concurrent"] <= k["viewers"]
    for rate in ("attention_rate", "chat_user_rate", "engagement_rate", "conversion_rate"):
        assert 0.0 <= k[rate] <= 1.0
    assert 0 <= k["avg_watch_seconds"] <= length + 1e-9
    assert k["viewers_over_1min"] <= k["viewers"] and k["mobile_viewers"] <= k["viewers"]
    assert sum(k["channels"].values()) == k["viewers"] == sum(k["devices"].values())
    assert k["unique_carts"] <= k["add_to_cart"]
    assert k["orders"] + k["replay_orders"] <= 4
    if k["timeline"]["concurrent"]:
        assert max(k["timeline"]["concurrent"]) == k["peak_concurrent"]
    # The order events arrive in does not matter.
    shuffled = list(events)
    random.Random(len(events)).shuffle(shuffled)
    assert compute(shuffled, start, end, h) == k
