"""Recognising the start of a keyframe inside one RTP payload, without decoding.

The relay only needs to know where a viewer may start (or restart) watching; these
functions read a few header bits of the H264 (RFC 6184) and VP8 (RFC 7741) payload
formats and never raise on short or malformed input.
"""

from __future__ import annotations

H264_IDR = 5
H264_SPS = 7
H264_STAP_A = 24
H264_FU_A = 28


def h264_is_keyframe(payload: bytes) -> bool:
    """True when the payload carries an SPS or the start of an IDR slice."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type in (H264_IDR, H264_SPS):
        return True
    if nal_type == H264_STAP_A:
        offset = 1
        while offset + 2 < len(payload):
            size = (payload[offset] << 8) | payload[offset + 1]
            if size == 0:
                return False
            if payload[offset + 2] & 0x1F in (H264_IDR, H264_SPS):
                return True
            offset += 2 + size
        return False
    if nal_type == H264_FU_A and len(payload) >= 2:
        fu_header = payload[1]
        return bool(fu_header & 0x80) and (fu_header & 0x1F) in (H264_IDR, H264_SPS)
    return False


def vp8_is_keyframe(payload: bytes) -> bool:
    """True for the first packet of a VP8 key frame."""
    size = len(payload)
    if size < 1:
        return False
    first = payload[0]
    start_of_partition = bool(first & 0x10)
    partition_id = first & 0x07
    if not start_of_partition or partition_id != 0:
        return False
    offset = 1
    if first & 0x80:  # X: extension byte follows
        if size < 2:
            return False
        ext = payload[1]
        offset = 2
        if ext & 0x80:  # I: picture id, 7 or 15 bits
            if size <= offset:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            offset += 1
        if ext & 0x30:  # T or K: TID/KEYIDX byte
            offset += 1
    if size <= offset:
        return False
    return not payload[offset] & 0x01  # P bit clear: key frame


def is_keyframe(codec: str, payload: bytes) -> bool:
    """`codec` is a lower-case MIME type such as 'video/h264'."""
    if codec == "video/h264":
        return h264_is_keyframe(payload)
    if codec == "video/vp8":
        return vp8_is_keyframe(payload)
    return False
