"""The viewer site: home, show and replay pages, calendar files, the brand stylesheet,
uploads, health, and a replay's files with what plays alongside.

May use: capability packages, services, views.web. Never views.admin or views.api.
"""
