"""What keeps viewers in a live show: polls and quizzes, fair giveaways, single-use offer
codes and written answers to questions (issue 16; docs/protocol.md). The pure parts
(polls, giveaways, codes) hold a room's state and know nothing of sockets; the service
turns the room protocol's messages into them and keeps what must last in SQLite.

May use: storage, i18n. Never room (the room uses this package), views or media.
"""
