-- The in-show cart (issue 13): a product's variant id, the shop's own id that its cart
-- API takes (a Shopify variant, a WooCommerce product or variation id), and how the cart
-- is handed to the shop at checkout: shopify (one cart permalink with every item),
-- woocommerce (one item per hand-off), custom (the cart link template, {items} for all).

ALTER TABLE products ADD COLUMN variant_id TEXT NOT NULL DEFAULT '';

ALTER TABLE shop_settings ADD COLUMN cart_platform TEXT NOT NULL DEFAULT 'custom';
