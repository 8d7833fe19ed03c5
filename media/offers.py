"""Checking an SDP offer before aiortc sees it.

aiortc raises AssertionError, IndexError or ValueError on many malformed offers, after
it has started building a peer connection. Everything that can be checked without a
peer connection is checked here first, so bad input is refused cheaply and clearly.
"""

from __future__ import annotations

import logging

from aiortc import sdp

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024
VIDEO_CODECS = ("video/h264", "video/vp8")
AUDIO_CODECS = ("audio/opus",)


class BadOffer(ValueError):
    """The offer cannot be used; the message says why, for the HTTP answer."""


def check_offer(body: bytes, role: str) -> sdp.SessionDescription:
    """Parse and vet an offer; `role` is 'publish' (WHIP) or 'play' (WHEP)."""
    if len(body) > MAX_OFFER_BYTES:
        raise BadOffer(f"the offer is larger than {MAX_OFFER_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadOffer("the offer is not UTF-8 text") from None
    if not text.lstrip().startswith("v=0"):
        raise BadOffer("the body is not an SDP offer (it must start with v=0)")
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc's parser raises many kinds on bad input
        # The caller is told what is wrong in their terms; the parser's exception is for
        # the server's log only (its text names our internals).
        log.info("an SDP offer could not be parsed: %r", exc)
        raise BadOffer("the offer is not valid SDP") from None
    kinds = [m.kind for m in description.media]
    if not kinds:
        raise BadOffer("the offer has no audio or video we can receive (no media section)")
    for kind in kinds:
        if kind not in ("audio", "video"):
            raise BadOffer(f"media of kind {kind!r} is not supported, only audio and video")
    if kinds.count("audio") > 1 or kinds.count("video") > 1:
        raise BadOffer("the offer may have at most one audio and one video section")
    mids = [m.rtp.muxId for m in description.media]
    if not all(mids):
        # aiortc builds no transport for a section without one, and every WebRTC client
        # (JSEP, RFC 8829) names its sections.
        raise BadOffer("every media section needs an a=mid")
    if len(set(mids)) != len(mids):
        raise BadOffer("two media sections have the same a=mid")
    wanted = ("sendonly", "sendrecv") if role == "publish" else ("recvonly", "sendrecv")
    for media in description.media:
        if media.direction not in wanted:
            raise BadOffer(f"the {media.kind} section must be {' or '.join(wanted)}")
        ice, dtls = media.ice, media.dtls
        if not (ice and ice.usernameFragment and ice.password):
            raise BadOffer(f"the {media.kind} section has no ICE credentials")
        if not (dtls and dtls.fingerprints):
            raise BadOffer(f"the {media.kind} section has no DTLS fingerprint")
        names = {c.mimeType.lower() for c in media.rtp.codecs}
        supported = VIDEO_CODECS if media.kind == "video" else AUDIO_CODECS
        if not names.intersection(supported):
            raise BadOffer(f"the {media.kind} section offers none of {', '.join(supported)}")
    return description
