"""What plays alongside a replay: its product chapters (every pin of the live show) and
its chat, both placed on the replay's clock (appliance/replays/timeline.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from appliance.catalog.products import Product
from appliance.replays.timeline import Timeline
from appliance.storage.db import Database

MAX_WINDOW = 120.0  # seconds of chat one request may ask for
MAX_MESSAGES = 1000  # per request; a busier window says it was cut


@dataclass(frozen=True)
class Chapter:
    t: float  # where it starts in the replay, seconds
    end: float  # where the product stops being shown
    product: Product


async def chapters(db: Database, show_id: int, timeline: Timeline) -> list[Chapter]:
    """One chapter per product pin that the replay holds, in replay order. A pin lasts
    until it was unpinned or the next pin, whichever came first."""
    rows = await db.fetchall(
        "SELECT pin.pinned_at, pin.unpinned_at, p.* FROM show_pins pin "
        "JOIN products p ON p.id = pin.product_id WHERE pin.show_id = ? "
        "ORDER BY pin.pinned_at, pin.id",
        (show_id,),
    )
    found: list[tuple[float, float | None, Product]] = []
    for row in rows:
        start = timeline.at(float(row["pinned_at"]))
        if start is None:
            continue  # trimmed away, or pinned while nothing was recorded
        end = None
        if row["unpinned_at"] is not None:
            end = timeline.at(float(row["unpinned_at"]))
        if found and abs(found[-1][0] - start) < 0.5:
            found.pop()  # re-pinned at once: the last one is what viewers saw
        found.append((start, end, Product.from_row(row)))
    out = []
    for n, (start, end, product) in enumerate(found):
        following = found[n + 1][0] if n + 1 < len(found) else timeline.duration
        stop = following if end is None else min(end, following)
        out.append(Chapter(round(start, 2), round(max(stop, start), 2), product))
    return out


@dataclass(frozen=True)
class ChatWindow:
    messages: list[dict[str, Any]]
    cut: bool  # more messages than MAX_MESSAGES fell in the window


async def chat_window(
    db: Database, show_id: int, timeline: Timeline, start: float, end: float
) -> ChatWindow:
    """The chat messages shown between replay times [start, end), oldest first, as the
    live room showed them: deleted messages stay deleted."""
    messages: list[dict[str, Any]] = []
    cut = False
    for lo, hi in timeline.walls(start, end):
        clauses: list[str] = ["show_id = ?", "deleted = 0"]
        params: list[float] = [show_id]
        if lo != float("-inf"):
            clauses.append("created_at >= ?")
            params.append(lo)
        if hi != float("inf"):
            clauses.append("created_at < ?")
            params.append(hi)
        rows = await db.fetchall(
            "SELECT id, name, text, staff_user_id, question, answer, created_at "
            f"FROM chat_messages "
            f"WHERE {' AND '.join(clauses)} ORDER BY created_at, id LIMIT ?",
            (*params, MAX_MESSAGES + 1),
        )
        for row in rows:
            t = timeline.at(float(row["created_at"]))
            if t is None:
                continue
            # The end of the replay belongs to the window that reaches it.
            last = t >= timeline.duration and end >= timeline.duration
            if not (start <= t < end or last):
                continue
            messages.append(
                {
                    "id": row["id"],
                    "t": round(t, 2),
                    "name": row["name"],
                    "text": row["text"],
                    "staff": row["staff_user_id"] is not None,
                    "question": bool(row["question"]),
                    "answer": row["answer"],  # a written answer, shown under the question
                }
            )
    messages.sort(key=lambda m: (m["t"], m["id"]))
    if len(messages) > MAX_MESSAGES:
        messages, cut = messages[:MAX_MESSAGES], True
    return ChatWindow(messages, cut)


async def answered_live(db: Database, show_id: int, timeline: Timeline) -> list[dict[str, Any]]:
    """Questions staff marked answered on camera, as chapters of the replay: where the
    answer starts, and the question."""
    rows = await db.fetchall(
        "SELECT id, name, text, answered_live_at FROM chat_messages WHERE show_id = ? "
        "AND deleted = 0 AND answered_live_at IS NOT NULL ORDER BY answered_live_at, id",
        (show_id,),
    )
    found = []
    for row in rows:
        t = timeline.at(float(row["answered_live_at"]))
        if t is not None:
            found.append(
                {"t": round(t, 2), "id": row["id"], "name": row["name"], "text": row["text"]}
            )
    return found


async def polls_window(
    db: Database, show_id: int, timeline: Timeline, start: float, end: float
) -> list[dict[str, Any]]:
    """The polls and quizzes whose result came out between replay times [start, end),
    with their final counts: the replay shows each result when the live showed it."""
    rows = await db.fetchall(
        "SELECT id, question, options, correct, counts, started_at, ends_at, closed_at "
        "FROM polls WHERE show_id = ? ORDER BY started_at, id",
        (show_id,),
    )
    found = []
    for row in rows:
        closed = row["closed_at"] if row["closed_at"] is not None else row["ends_at"]
        t = timeline.at(float(closed))
        if t is None:
            continue
        last = t >= timeline.duration and end >= timeline.duration
        if not (start <= t < end or last):
            continue
        found.append(
            {
                "id": row["id"],
                "t": round(t, 2),
                "question": row["question"],
                "options": json.loads(row["options"]),
                "counts": json.loads(row["counts"]),
                "correct": row["correct"],
            }
        )
    return found
