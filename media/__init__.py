"""Vitrine's media plane: WHIP ingest, the selective forwarding relay, WHEP playback.

The app drives it through `media.plane.MediaPlane` only; nothing here knows about HTTP
routes, chat or the database. See docs/media.md for how packets flow.
"""
