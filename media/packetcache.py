"""The recent packets of one incoming stream, by sequence number, for retransmissions."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class PacketCache(Generic[T]):
    """A fixed ring: storing packet n forgets packet n - size. No allocation per packet."""

    __slots__ = ("_items", "_seqs", "_size")

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._items: list[T | None] = [None] * size
        self._seqs: list[int] = [-1] * size

    def put(self, seq: int, item: T) -> None:
        slot = seq % self._size
        self._items[slot] = item
        self._seqs[slot] = seq

    def get(self, seq: int) -> T | None:
        slot = seq % self._size
        return self._items[slot] if self._seqs[slot] == seq else None

    def clear(self) -> None:
        self._items = [None] * self._size
        self._seqs = [-1] * self._size
