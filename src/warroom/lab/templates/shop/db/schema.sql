-- Shop schema (PostgreSQL 16).
CREATE TABLE categories (
    id integer PRIMARY KEY,
    name text NOT NULL
);

CREATE TABLE products (
    id bigint PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    slug text NOT NULL,
    name text NOT NULL,
    brand text NOT NULL,
    category_id integer NOT NULL REFERENCES categories (id),
    price_cents integer NOT NULL,
    popularity integer NOT NULL,
    description text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category_popularity_idx ON products (category_id, popularity DESC);

CREATE TABLE inventory (
    product_id bigint PRIMARY KEY REFERENCES products (id),
    stock integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    password_salt text NOT NULL,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart_items (
    user_id bigint NOT NULL,
    product_id bigint NOT NULL,
    quantity integer NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, product_id)
);

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL,
    total_cents integer NOT NULL,
    status text NOT NULL,
    payment_id bigint,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_user_idx ON orders (user_id);

CREATE TABLE payments (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL,
    amount_cents integer NOT NULL,
    card_token text NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
