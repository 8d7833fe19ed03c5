"""The live room of a show: the hub and its broadcast tick, one handler per message type,
what the room keeps in SQLite, how frames reach a socket, mutes and bans, the tick's health,
when the garbage collector may run, and names compared as they look (docs/protocol.md).

May use: catalog, accounts, kpis (the event log), storage, i18n. Never views or media.
"""
