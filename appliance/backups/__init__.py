"""Backups that restore: a consistent copy of a running shop, checked and put back.

copy.py makes a backup (the database through SQLite's online backup API, then the
uploads and replays) and prunes old ones; restore.py checks a copy (integrity, schema
version) and puts it in place of a data directory, keeping what it replaces aside;
running.py is the lock a serving process holds on its data directory; schedule.py runs
backups every few hours from the server, off the event loop, with an optional command
after each one. May use appliance.storage and appliance.config; never the views.
"""
