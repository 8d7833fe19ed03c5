"""Where Vitrine keeps things: the SQLite database (one writer, one reader, numbered
migrations in storage/migrations) and uploaded images on disk.

May use: the standard library and aiosqlite only; nothing else of Vitrine's.
"""
