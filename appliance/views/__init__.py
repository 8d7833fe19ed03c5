"""The only place that speaks HTTP: Quart blueprints and the room's websocket, grouped as
admin/ (staff pages and the studio), public/ (the viewer site) and api/ (WHIP/WHEP, events,
conversions, the room socket), plus the plumbing they share (web).

Views use any capability package and services; capability packages never import views, and
admin, public and api never import each other (shared pieces live in views/web.py).
"""
