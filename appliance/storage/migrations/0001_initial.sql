-- Vitrine's first schema: accounts, shop settings, catalogue and shows.
-- Money is stored in integer minor units (cents); times are Unix seconds, UTC.

CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'host', 'moderator')),
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL
);

CREATE TABLE shop_settings (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    logo TEXT,
    brand_color TEXT NOT NULL,
    currency TEXT NOT NULL,
    language TEXT NOT NULL,
    timezone TEXT NOT NULL,
    cart_url_template TEXT NOT NULL DEFAULT ''
);

INSERT INTO shop_settings (id, name, brand_color, currency, language, timezone)
VALUES (1, 'My shop', '#d6336c', 'EUR', 'en', 'Europe/Paris');

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    sku TEXT UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
    currency TEXT NOT NULL,
    stock_status TEXT NOT NULL
        CHECK (stock_status IN ('in_stock', 'low_stock', 'out_of_stock', 'preorder')),
    product_url TEXT NOT NULL DEFAULT '',
    cart_url TEXT NOT NULL DEFAULT '',
    image TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE shows (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    cover TEXT,
    starts_at INTEGER NOT NULL,
    duration_minutes INTEGER NOT NULL DEFAULT 60 CHECK (duration_minutes > 0),
    host_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    status TEXT NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'live', 'ended')),
    stream_key TEXT NOT NULL UNIQUE,
    live_started_at INTEGER,
    live_ended_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX shows_by_start ON shows (starts_at);

CREATE TABLE show_products (
    show_id INTEGER NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    PRIMARY KEY (show_id, product_id)
);

CREATE INDEX show_products_by_product ON show_products (product_id);
