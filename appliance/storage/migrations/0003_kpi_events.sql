-- KPIs: the viewer event log (docs/kpis.md) and the orders shops report back.
-- No IP address or personal data is stored here (docs/privacy.md).

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    viewer TEXT NOT NULL,
    kind TEXT NOT NULL,
    props TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX events_by_show ON events (show_id, ts);
-- To attribute an order that names its viewer but not its show.
CREATE INDEX events_by_viewer ON events (viewer, ts);

-- One row per order id, whatever how often the shop reports it.
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    show_id INTEGER REFERENCES shows (id) ON DELETE SET NULL,
    viewer TEXT NOT NULL DEFAULT '',
    amount_minor INTEGER NOT NULL CHECK (amount_minor >= 0),
    currency TEXT NOT NULL,
    products TEXT,
    signed INTEGER NOT NULL CHECK (signed IN (0, 1)),
    ts REAL NOT NULL
);

CREATE INDEX orders_by_show ON orders (show_id, ts);

-- The key shops sign their order reports with (POST /api/conversions); rotatable.
ALTER TABLE shop_settings ADD COLUMN conversion_secret TEXT NOT NULL DEFAULT '';
UPDATE shop_settings SET conversion_secret = lower(hex(randomblob(32)));
