"""The link between the app and the media plane (media/): a publisher going live, ending a
show, recordings handed to replays, ICE servers for the pages.

May use: catalog, replays, storage, config, and media's small protocols. Never views.
"""
