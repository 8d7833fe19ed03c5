"""The player on the shop's own site: which origins may frame it (embed.allowed_origins and
the origin of the shop's cart link), and the public facts embed.js shows there (the live
or next show for the floating button, the replays a product was shown in, the line-up the
player hands to the shop's cart). The script itself is web/static/embed.js; the player's
side of the messages is web/static/js/embed_bridge.js; docs/embed.md tells a shop how.

May use: catalog, config, replays, storage. Never appliance.views.
"""
