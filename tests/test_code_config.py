"""Config diffs: the changed key, old and new value and line, unit and ratio, for each file format
and for constants in code; destructive migration statements."""

from __future__ import annotations

import pytest

from warroom.analysis.code import text_file_hits
from warroom.analysis.code_patterns import config_changes, constant_changes, parse
from warroom.analysis.code_patterns.config import quantity, read_settings


def changes(path: str, old: str, new: str) -> list[tuple[str, object, object, int, str, object]]:
    return [
        (str(h.data["key"]), h.data["old"], h.data["new"], h.line, h.subkind, h.data.get("ratio"))
        for h in config_changes(path, old, new)
    ]


FORMATS = [
    (
        "deploy/checkout.yaml",
        "service: checkout\ntimeouts_ms:\n  payment: 30000\ndatabase:\n  pool_size: 20\n",
        "service: checkout\ntimeouts_ms:\n  payment: 30\ndatabase:\n  pool_size: 20\n",
        [("timeouts_ms.payment", 30000, 30, 3, "timeout", 0.001)],
    ),
    (
        "config/app.json",
        '{\n  "db": {\n    "maxOpenConns": 50\n  },\n  "features": {"newCheckout": false}\n}\n',
        '{\n  "db": {\n    "maxOpenConns": 5\n  },\n  "features": {"newCheckout": true}\n}\n',
        [
            ("db.maxOpenConns", 50, 5, 3, "pool_size", 0.1),
            ("features.newCheckout", False, True, 5, "feature_flag", None),
        ],
    ),
    (
        "pyproject-like.toml",
        '[http]\nretries = 3\ntimeout = "30s"\n',
        '[http]\nretries = 10\ntimeout = "500ms"\n',
        [
            ("http.retries", 3, 10, 2, "retries", pytest.approx(3.333333, abs=1e-5)),
            ("http.timeout", "30s", "500ms", 3, "timeout", pytest.approx(1 / 60, abs=1e-5)),
        ],
    ),
    (
        "etc/worker.ini",
        "[pool]\nsize = 8\n\n[log]\nlevel = info\n",
        "[pool]\nsize = 2\n\n[log]\nlevel = debug\n",
        [("pool.size", "8", "2", 2, "pool_size", 0.25), ("log.level", "info", "debug", 5, "setting", None)],
    ),
    (
        ".env",
        "# shop\nDB_POOL_SIZE=20\nREQUEST_TIMEOUT_S=30\n",
        "# shop\nDB_POOL_SIZE=20\nREQUEST_TIMEOUT_S=3\nNEW_FLAG=on\n",
        [("REQUEST_TIMEOUT_S", "30", "3", 3, "timeout", 0.1), ("NEW_FLAG", None, "on", 4, "feature_flag", None)],
    ),
    (
        "src/main/resources/application.properties",
        "server.port=8080\nspring.datasource.hikari.maximum-pool-size=10\n",
        "server.port=8080\n",
        [("spring.datasource.hikari.maximum-pool-size", "10", None, 2, "pool_size", None)],
    ),
]


@pytest.mark.parametrize(("path", "old", "new", "expected"), FORMATS, ids=[f[0] for f in FORMATS])
def test_changed_keys_with_old_and_new_value_line_and_ratio(path: str, old: str, new: str, expected: list) -> None:
    assert changes(path, old, new) == expected


def test_units_come_from_the_key_or_the_value() -> None:
    hit = config_changes("a.yaml", "timeout_ms: 30000\n", "timeout_ms: 30\n")[0]
    assert hit.data["unit"] == "ms" and "×0.001" in hit.detail and "30000" in hit.detail
    assert quantity("1m30s") == (90.0, "s") and quantity("512Mi") == (512 * 2**20, "B")
    assert quantity("30 * time.Second") == (30.0, "s") and quantity("Duration.ofMillis(250)") == (0.25, "s")


def test_malformed_config_raises_a_one_line_error_naming_the_file() -> None:
    with pytest.raises(ValueError, match=r"^deploy/x\.yaml: not valid yaml"):
        read_settings("deploy/x.yaml", "a: [1, 2\n")
    hits = text_file_hits("deploy/x.yaml", "a: 1\n", "a: [1, 2\n", [(1, 1)])
    assert isinstance(hits, str) and "deploy/x.yaml" in hits


@pytest.mark.parametrize(
    ("language", "old", "new", "key", "line", "subkind"),
    [
        ("python", "TIMEOUT_MS = 2000\nNAME = 'x'\n", "TIMEOUT_MS = 20\nNAME = 'x'\n", "TIMEOUT_MS", 1, "timeout"),
        (
            "go",
            "package p\n\nconst requestTimeout = 30 * time.Second\n",
            "package p\n\nconst requestTimeout = 30 * time.Millisecond\n",
            "requestTimeout",
            3,
            "timeout",
        ),
        (
            "java",
            "class C {\n  static final int MAX_RETRIES = 3;\n}\n",
            "class C {\n  static final int MAX_RETRIES = 30;\n}\n",
            "MAX_RETRIES",
            2,
            "retries",
        ),
        (
            "javascript",
            "const USE_NEW_CART = false;\n",
            "const USE_NEW_CART = true;\n",
            "USE_NEW_CART",
            1,
            "feature_flag",
        ),
    ],
)
def test_constants_in_code(language: str, old: str, new: str, key: str, line: int, subkind: str) -> None:
    hits = constant_changes(parse("x", old.encode(), language), parse("x", new.encode(), language))
    assert [(h.data["key"], h.line, h.subkind) for h in hits] == [(key, line, subkind)]


def test_go_duration_constant_ratio() -> None:
    old = parse("x", b"package p\nconst t = 30 * time.Second\n", "go")
    new = parse("x", b"package p\nconst t = 30 * time.Millisecond\n", "go")
    assert constant_changes(old, new)[0].data["ratio"] == pytest.approx(0.001)


def test_destructive_migration_statement_is_located() -> None:
    sql = "-- drop a column\nBEGIN;\nALTER TABLE payments DROP COLUMN provider_ref;\n"
    sql += "DELETE FROM old WHERE id < 5;\nDELETE FROM carts;  -- WHERE added_at < now()\nCOMMIT;\n"
    hits = text_file_hits("db/migrations/0022.sql", None, sql, None)
    assert not isinstance(hits, str)
    assert [(h.kind, h.subkind, h.line) for h in hits] == [
        ("destructive_migration", "drop_column", 3),
        ("destructive_migration", "delete_all", 5),
    ]


def test_an_empty_section_that_gains_a_key_is_one_change_at_the_key() -> None:
    old = "timeouts_ms:\n  payment: 2000\nfeature_flags:\n"
    new = "timeouts_ms:\n  payment: 2000\nfeature_flags:\n  async_reservation: true\n"
    assert changes("deploy/checkout.yaml", old, new) == [
        ("feature_flags.async_reservation", None, True, 4, "feature_flag", None)
    ]
