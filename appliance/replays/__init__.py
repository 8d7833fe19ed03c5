"""Replays: a show's recording finalised into one file and a poster, its trims and
publication (store), and what plays alongside it on the replay's clock (content, timeline).

May use: catalog, storage, i18n, and media's recording finalisers. Never views.
"""
