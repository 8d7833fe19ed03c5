""" "Watch from the start" of a show still live: its recording, read as an HLS EVENT playlist.

The live rendition (media/hls.py) keeps only its last few segments, in memory. The
recording (media/recorder.py) already keeps the whole show on disk as fragmented MP4
(`part-NNN.mp4`: an init (ftyp + moov), then a fragment (moof + mdat) per keyframe or per
second, each whole on disk when written), from the same H264 as sent and the same AAC. So
the start of the show needs no copy of its own: `StartIndex` reads the parts' boxes as
they are written and lists each fragment as a segment by byte range, and each part (a
publisher's reconnect, a server restart) after an `EXT-X-DISCONTINUITY` with its own init.
Nothing is kept but offsets; the parts go on to make the replay as before.

Only H264 parts with video are listed (a VP8 show's parts are Matroska, which HLS players
do not read). With `media.record` off there is no recording, hence no start playlist.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from media.hls import _children, fragment_info

PART_GLOB = "part-*.mp4"


@dataclass(slots=True)
class Fragment:
    offset: int  # of its moof
    length: int  # moof + mdat
    duration: float


@dataclass
class PartScan:
    """How far one recording part has been read, and what it holds so far."""

    name: str
    offset: int = 0  # the next box to read
    ftyp_at: int = 0
    init: tuple[int, int] | None = None  # (offset, length) of ftyp + moov
    track: int | None = None  # the video track's id; None: none (yet)
    timescale: int = 0
    fragments: list[Fragment] = field(default_factory=list)
    moof: tuple[int, bytes] | None = None  # a moof whose mdat is still to come


def video_track(moov: bytes) -> tuple[int, int] | None:
    """(track id, timescale) of the moov's video track, or None."""
    for kind, start, end in _children(moov, 0, len(moov)):
        if kind != b"moov":
            continue
        for tkind, tstart, tend in _children(moov, start, end):
            if tkind != b"trak":
                continue
            track_id, timescale, video = 0, 0, False
            for bkind, bstart, bend in _children(moov, tstart, tend):
                if bkind == b"tkhd":
                    version = moov[bstart]
                    (track_id,) = struct.unpack_from(">I", moov, bstart + (20 if version else 12))
                elif bkind == b"mdia":
                    for mkind, mstart, _mend in _children(moov, bstart, bend):
                        if mkind == b"hdlr":
                            video = moov[mstart + 8 : mstart + 12] == b"vide"
                        elif mkind == b"mdhd":
                            version = moov[mstart]
                            at = mstart + (20 if version else 12)
                            (timescale,) = struct.unpack_from(">I", moov, at)
            if video and track_id and timescale:
                return track_id, timescale
    return None


def read_on(path: Path, scan: PartScan) -> None:
    """Read the boxes of `path` written since the last call (a box only once whole)."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        while scan.offset + 8 <= size:
            f.seek(scan.offset)
            box_size, kind = struct.unpack(">I4s", f.read(8))
            head = 8
            if box_size == 1:  # a 64-bit size follows
                (box_size,) = struct.unpack(">Q", f.read(8))
                head = 16
            if box_size < head or scan.offset + box_size > size:
                return  # size 0 (to the end of a file still written) or not whole yet
            at = scan.offset
            if kind == b"ftyp":
                scan.ftyp_at = at
            elif kind == b"moov":
                f.seek(at)
                found = video_track(f.read(box_size))
                scan.init = (scan.ftyp_at, at + box_size - scan.ftyp_at)
                if found is not None:
                    scan.track, scan.timescale = found
            elif kind == b"moof" and scan.track is not None:
                f.seek(at)
                scan.moof = (at, f.read(box_size))
            elif kind == b"mdat" and scan.moof is not None:
                moof_at, moof = scan.moof
                scan.moof = None
                duration, _sync = fragment_info(moof, scan.track or 1, scan.timescale)
                scan.fragments.append(Fragment(moof_at, at + box_size - moof_at, duration))
            scan.offset = at + box_size


class StartIndex:
    """The recording of one live show as an HLS EVENT playlist, from its first fragment."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.parts: dict[str, PartScan] = {}

    def scan(self) -> list[PartScan]:
        """Every part with video and at least one fragment, oldest first."""
        for path in sorted(self.folder.glob(PART_GLOB)):
            scan = self.parts.setdefault(path.name, PartScan(path.name))
            try:
                read_on(path, scan)
            except OSError:
                continue
        return [
            p
            for _name, p in sorted(self.parts.items())
            if p.init is not None and p.track is not None and p.fragments
        ]

    def playlist(self, base: str) -> str | None:
        """The EVENT playlist (no end: the show goes on), its URIs `<base><part name>`
        with byte ranges; None while nothing is written."""
        parts = self.scan()
        if not parts:
            return None
        longest = max(f.duration for p in parts for f in p.fragments)
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            # Fragments are cut at a keyframe or after a second: 2 s holds them.
            f"#EXT-X-TARGETDURATION:{max(2, math.ceil(longest))}",
            "#EXT-X-PLAYLIST-TYPE:EVENT",
            "#EXT-X-MEDIA-SEQUENCE:0",
        ]
        for n, part in enumerate(parts):
            assert part.init is not None
            uri = f"{base}{part.name}"
            if n:
                lines.append("#EXT-X-DISCONTINUITY")
            at, length = part.init
            lines.append(f'#EXT-X-MAP:URI="{uri}",BYTERANGE="{length}@{at}"')
            for fragment in part.fragments:
                lines.append(f"#EXTINF:{fragment.duration:.5f},")
                lines.append(f"#EXT-X-BYTERANGE:{fragment.length}@{fragment.offset}")
                lines.append(uri)
        return "\n".join(lines) + "\n"
