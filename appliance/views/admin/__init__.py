"""Staff pages: sign-in and setup, the schedule and line-ups, products, replays, users,
shop settings, KPIs, and the seller's studio.

May use: capability packages, services, views.web. Never views.public or views.api.
"""
