"""The retailer's figures: the pure KPI engine (engine: standard library only), the event
log that viewer pages and the room feed, the orders the shop reports back (conversions),
the reports and CSV exports of stored shows, and the server-rendered SVG charts.

May use: catalog, storage, i18n (the engine none of them). Never views or media.
"""
