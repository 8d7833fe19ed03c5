"""Reminders: "Notify me" by email with double opt-in, the go-live and hour-before emails,
one-click unsubscribe, and the signed notify webhook (docs/reminders.md).

What it holds: the sign-ups and their signed links (signups.py), the emails themselves
(messages.py), sending through SMTP in a thread of its own (smtp.py), the outbox that
sends in rate-limited batches and retries (outbox.py), the webhook's deliveries
(webhook.py), a show's own choice of the hour-before email (show_settings.py), and
`Reminders`, which ties them to the shows' lifecycle (service.py).

What it may use: the store (appliance.storage), the shows and the calendar file
(appliance.catalog), the conversion secret (appliance.kpis.conversions), the settings
and the translation catalogues. Never appliance.views: the pages that take sign-ups live
in appliance/views/public/reminders.py and call in here.
"""
