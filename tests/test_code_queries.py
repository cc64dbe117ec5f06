"""Queries whose predicates no index covers: SQL text in each language's string shapes, ORM query
builders, Spring Data derived queries; indexed queries next to each that must not fire; the schema
from SQL and Alembic migrations."""

from __future__ import annotations

import pytest

from warroom.analysis.code_patterns import analyse_source, parse_schema, unindexed_columns

MIGRATIONS = [
    (
        "db/001_init.sql",
        """CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    customer_email TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_idx ON orders (customer_id, created_at);
CREATE TABLE order_items (order_id BIGINT NOT NULL, sku TEXT NOT NULL, PRIMARY KEY (order_id, sku));
""",
    ),
    (
        "alembic/versions/002_users.py",
        """def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("nickname", sa.Text),
    )
    op.create_index("ix_users_email", "users", ["email"])
""",
    ),
]
SCHEMA = parse_schema(MIGRATIONS)


def unindexed(language: str, source: str) -> set[tuple[int, str, str]]:
    hits = analyse_source(source.encode(), language, SCHEMA, {"unindexed_query"})
    return {(h.line, h.subkind, f"{h.data['table']}.{','.join(h.data['columns'])}") for h in hits}  # type: ignore[arg-type]


def test_schema_from_sql_and_alembic() -> None:
    assert SCHEMA.leading("orders") == {"id", "customer_id"}
    assert SCHEMA.leading("users") == {"id", "email"}
    assert "nickname" in SCHEMA.columns["users"]
    assert SCHEMA.table_for("OrderItem") == "order_items" and SCHEMA.table_for("User") == "users"
    assert SCHEMA.column_of("orders", "customerEmail") == "customer_email"


def test_index_coverage_and_unknown_tables() -> None:
    assert unindexed_columns("SELECT * FROM orders o WHERE o.customer_id = $1 AND status = 'x'", SCHEMA) == []
    problems = unindexed_columns("SELECT * FROM orders WHERE customer_email = $1", SCHEMA)
    assert problems and problems[0]["columns"] == ["customer_email"]
    assert unindexed_columns("SELECT * FROM carts WHERE token = $1", SCHEMA) == []  # not in the migrations
    assert unindexed_columns("SELECT * FROM orders WHERE no_such_column = 1", SCHEMA) == []


def test_an_inequality_on_an_indexed_column_does_not_cover_the_query() -> None:
    """`id <> $2` reads every other row: the primary key cannot narrow it, so the equality on an
    unindexed column is what the planner has to scan for."""
    sql = "SELECT * FROM orders WHERE customer_email = $1 AND id <> $2 ORDER BY created_at DESC LIMIT 6"
    (problem,) = unindexed_columns(sql, SCHEMA)
    assert problem["columns"] == ["customer_email"]
    assert unindexed_columns("SELECT * FROM orders WHERE customer_id = $1 AND id != $2", SCHEMA) == []
    assert unindexed_columns("SELECT * FROM orders WHERE id <> $1", SCHEMA) == []  # no index would help


CASES = [
    (
        "python",
        """def by_email(cur, email):
    cur.execute(f"SELECT id FROM orders WHERE customer_email = %s", (email,))

def by_status(cur, status, limit):
    sql = "SELECT id FROM orders"
    sql += " WHERE status = %s"
    cur.execute(sql % limit, (status,))

def by_customer(cur, cid):
    cur.execute("SELECT id FROM orders WHERE customer_id = %s", (cid,))

def orm(session, email, nick):
    session.query(Order).filter(Order.customer_email == email).all()
    User.objects.filter(nickname__iexact=nick).first()
    User.objects.filter(email=email).first()
    session.query(User).filter_by(id=3).one()
""",
        {
            (2, "sql_text", "orders.customer_email"),
            (5, "sql_text", "orders.status"),
            (13, "query_builder", "orders.customer_email"),
            (14, "query_builder", "users.nickname"),
        },
    ),
    (
        "go",
        """package repo

func (r *Repo) ByEmail(ctx context.Context, email string) error {
	q := "SELECT id FROM orders " +
		"WHERE customer_email = $1"
	_, err := r.db.QueryContext(ctx, q, email)
	r.gorm.Model(&Order{}).Where("status = ?", "paid").Find(&out)
	r.gorm.Where("customer_id = ?", id).Find(&out)
	return err
}
""",
        {(4, "sql_text", "orders.customer_email"), (7, "query_builder", "orders.status")},
    ),
    (
        "java",
        """interface OrderRepository extends JpaRepository<Order, Long> {
  List<Order> findByCustomerEmail(String email);
  List<Order> findByCustomerIdOrderByCreatedAtDesc(long id);
  @Query("SELECT o FROM Order o WHERE o.status = :s")
  List<Order> withStatus(String s);
}
class Dao {
  void load(Connection c, String email) throws SQLException {
    c.prepareStatement("SELECT id FROM orders WHERE " + "customer_email = ?").executeQuery();
  }
}""",
        {
            (2, "derived_query", "orders.customer_email"),
            (4, "sql_text", "orders.status"),
            (9, "sql_text", "orders.customer_email"),
        },
    ),
    (
        "javascript",
        """async function find(db, email, status) {
  await db.query(`SELECT id FROM orders WHERE customer_email = ${email}`);
  await knex('orders').where({ status }).first();
  await knex('orders').where('customer_id', 7);
  await User.findAll({ where: { nickname: 'x' } });
  await prisma.user.findMany({ where: { email } });
}
""",
        {
            (2, "sql_text", "orders.customer_email"),
            (3, "query_builder", "orders.status"),
            (5, "query_builder", "users.nickname"),
        },
    ),
]


@pytest.mark.parametrize(("language", "source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_unindexed_queries_per_language(language: str, source: str, expected: set[tuple[int, str, str]]) -> None:
    assert unindexed(language, source) == expected


def test_no_schema_no_judgement() -> None:
    source = b'cur.execute("SELECT id FROM orders WHERE customer_email = %s")\n'
    assert analyse_source(source, "python", None, {"unindexed_query"}) == []
