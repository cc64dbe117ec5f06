-- Seed data. The number of products comes from the session setting shop.seed_products.
INSERT INTO categories (id, name)
SELECT c, 'category-' || c FROM generate_series(1, 200) AS c;

-- The first 2,000 products are the best sellers; the rest of the catalogue is the long tail.
INSERT INTO products (id, sku, slug, name, brand, category_id, price_cents, popularity, description)
SELECT i,
       'SKU-' || lpad(i::text, 8, '0'),
       'product-' || i,
       initcap(md5(i::text)::varchar(10)) || ' ' || (ARRAY['lamp', 'chair', 'mug', 'kettle', 'desk', 'rug'])[1 + i % 6],
       'brand-' || (i % 5000),
       1 + (i % 200),
       199 + (i * 7919) % 50000,
       CASE WHEN i <= 2000 THEN 1000000 - i ELSE (i * 104729) % 100000 END,
       repeat(md5(i::text || 'description'), 3)
FROM generate_series(1, current_setting('shop.seed_products')::bigint) AS i;

-- One product in 25 is sold out.
INSERT INTO inventory (product_id, stock)
SELECT i, CASE WHEN i % 25 = 0 THEN 0 ELSE 10000 + i % 500 END
FROM generate_series(1, current_setting('shop.seed_products')::bigint) AS i;

-- Customers: password of user N is 'pw-N' (salted SHA-256, the legacy scheme auth still reads).
INSERT INTO users (id, email, password_salt, password_hash)
SELECT u, 'user' || u || '@example.com', md5('salt' || u),
       encode(sha256((md5('salt' || u) || 'pw-' || u)::bytea), 'hex')
FROM generate_series(1, greatest(current_setting('shop.seed_products')::bigint / 10, 1000)) AS u;

ANALYZE;
