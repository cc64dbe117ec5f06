"""The tree-sitter grammars are pinned exactly, and the node shapes the code detectors rely on are
what those versions produce (a grammar release renamed Python's `await` node once, and a leak went
unseen): a version bump that changes a shape fails here, not silently in production."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from warroom.analysis.code_patterns.syntax import GRAMMARS, language_of, parse, walk

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
GRAMMAR_PACKAGES = (
    "tree-sitter",
    "tree-sitter-go",
    "tree-sitter-python",
    "tree-sitter-java",
    "tree-sitter-javascript",
    "tree-sitter-typescript",
)


def _pins() -> dict[str, str]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {m.group(1): m.group(2) for d in deps if (m := re.fullmatch(r"([\w-]+)==([\w.]+)", d))}


@pytest.mark.parametrize("package", GRAMMAR_PACKAGES)
def test_grammar_is_pinned_exactly_and_installed_at_that_version(package: str) -> None:
    pins = _pins()
    assert package in pins, f"{package} must be pinned with == in pyproject.toml"
    assert version(package) == pins[package]


def _types(language: str, source: str) -> set[str]:
    parsed = parse("x", source.encode(), language)
    assert not parsed.root.has_error, f"{language} sample does not parse"
    return {n.type for n in walk(parsed.root)}


SHAPES = [
    # (language, source, node types the detectors match)
    ("python", "async def f(p):\n    c = await p.getconn()\n", {"await", "function_definition", "assignment", "call"}),
    ("python", "async def f(p):\n    async with p.acquire() as c:\n        pass\n", {"with_item", "as_pattern"}),
    ("python", "def f(p):\n    try:\n        x()\n    finally:\n        p.putconn(c)\n", {"finally_clause"}),
    (
        "python",
        "@app.get('/x')\ndef f(request):\n    return [a for a in xs]\n",
        {"decorated_definition", "for_in_clause"},
    ),
    ("python", "def f(xs):\n    s = ''\n    for x in xs:\n        s += x\n", {"for_statement", "augmented_assignment"}),
    (
        "python",
        "def f(x):\n    q = f'SELECT {x}' 'a' % y\n",
        {"interpolation", "concatenated_string", "binary_operator"},
    ),
    (
        "go",
        "package p\nfunc f() {\n\tc, err := db.Conn(ctx)\n\tdefer c.Close()\n}\n",
        {"defer_statement", "short_var_declaration"},
    ),
    ("go", "package p\nfunc f() {\n\tfor _, a := range xs {\n\t}\n}\n", {"for_statement", "range_clause"}),
    (
        "go",
        "package p\nconst T = 30 * time.Second\nvar m = map[string]int{}\n",
        {"const_spec", "var_spec", "composite_literal"},
    ),
    (
        "go",
        "package p\nfunc (h *H) ServeHTTP(w http.ResponseWriter, r *http.Request) {}\n",
        {"method_declaration", "qualified_type"},
    ),
    (
        "java",
        "class A { void f() { try (Connection c = ds.getConnection()) { } } }",
        {"try_with_resources_statement", "resource"},
    ),
    (
        "java",
        'class A { @GetMapping("/x") void f() { for (String a : xs) { } } }',
        {"annotation", "enhanced_for_statement"},
    ),
    (
        "java",
        "class A { static final Map<String, String> C = new HashMap<>(); }",
        {"field_declaration", "object_creation_expression"},
    ),
    (
        "java",
        "class A { void f() { try { } finally { c.close(); } synchronized (this) { } } }",
        {"finally_clause", "synchronized_statement"},
    ),
    (
        "javascript",
        "app.get('/x', async (req, res) => { const c = await pool.connect(); });",
        {"arrow_function", "await_expression", "variable_declarator"},
    ),
    (
        "javascript",
        "function f(xs) { for (const a of xs) { } try { } finally { } }",
        {"for_in_statement", "finally_clause"},
    ),
    (
        "javascript",
        "function f(x) { const q = `SELECT ${x}`; const r = new RegExp(x); }",
        {"template_string", "new_expression"},
    ),
    (
        "typescript",
        "async function f(p: Pool): Promise<void> { const c = await p.connect(); }",
        {"await_expression", "required_parameter"},
    ),
]


@pytest.mark.parametrize(("language", "source", "expected"), SHAPES)
def test_node_shapes_the_detectors_rely_on(language: str, source: str, expected: set[str]) -> None:
    assert expected <= _types(language, source)


def test_every_grammar_loads_and_each_extension_has_one() -> None:
    for name in GRAMMARS:
        parse("x", b"", name)
    assert language_of("a/b.py") == "python" and language_of("x.tsx") == "tsx" and language_of("x.d.ts") is None
    assert language_of("README.md") is None
