"""HLS for viewers, on the app's side: where a page fetches a show's low-latency HLS
rendition (the show's own server, or a CDN or caching nginx named by `media.hls_base_url`)
and which origins the pages' Content-Security-Policy must then allow. The rendition itself
is written by the media plane (media/hls.py) and served by appliance/views/api/hls.py.

May use: appliance.config and media. Never appliance.views.
"""
