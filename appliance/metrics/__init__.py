"""Prometheus metrics: what the running server already counts, read at scrape time.

collect.py is a prometheus-client Collector that reads the media plane's relays and
recorders, the live rooms and their tick, the KPI event log, the data directory's disk
and the HTTP request counts when /metrics is asked, so nothing is added to the hot
paths; requests.py counts answers by route class and status; access.py decides who may
scrape (off by default; a bearer token; addresses that need none). May use media,
appliance.config and the capability packages whose objects it reads; never the views.
"""
