"""Machine-facing endpoints: WHIP/WHEP and live status, KPI events, order reports
(conversions), and the live room's websocket.

May use: capability packages, services, views.web. Never views.admin or views.public.
"""
