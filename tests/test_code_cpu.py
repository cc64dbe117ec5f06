"""CPU-heavy code per language and node shape, with the bounded or linear code next to it that must
not fire, and whether the function is on a request path."""

from __future__ import annotations

import pytest

from warroom.analysis.code_patterns import analyse_source


def cpu(language: str, source: str) -> set[tuple[str | None, int, str]]:
    return {(h.function, h.line, h.subkind) for h in analyse_source(source.encode(), language, None, {"cpu_heavy"})}


PYTHON = """import json, re, time, requests

@app.post("/dedupe")
def dedupe(request):
    items = request.json["items"]
    out = []
    for a in items:
        for b in items:
            if a["name"] == b["name"]:
                out.append(a)
    return out

def per_order(orders):
    total = 0
    for order in orders:
        for item in order.items:
            total += item.price
    for code in ("a", "b", "c"):
        for order in orders:
            total += 1
    return total

def render(rows):
    html = ""
    for row in rows:
        html += "<tr>" + row + "</tr>"
    return html

def render_fine(rows):
    return "".join("<tr>" + row + "</tr>" for row in rows)

def scan(lines, raw):
    seen = []
    for line in lines:
        doc = json.loads(raw)
        if line in seen:
            continue
        seen.append(line)
        ranked = sorted(seen)
    return ranked

def per_line(lines):
    return [json.loads(line) for line in lines]

async def fetch_user(request):
    time.sleep(0.5)
    r = requests.get("http://users/1")
    await asyncio.sleep(0.1)
    return r

def wait_until(deadline):
    while time.time() < deadline:
        pass
"""


def test_python_shapes() -> None:
    assert cpu("python", PYTHON) == {
        ("dedupe", 8, "quadratic_comparison"),
        ("render", 26, "string_concat_in_loop"),
        ("scan", 35, "parse_in_loop"),
        ("scan", 36, "linear_search_in_loop"),
        ("scan", 39, "sort_in_loop"),
        ("fetch_user", 46, "blocking_in_async"),
        ("fetch_user", 47, "blocking_in_async"),
        ("wait_until", 52, "busy_wait"),
    }


def test_request_path_is_known_for_a_decorated_route_and_unknown_for_a_helper() -> None:
    hits = {h.function: h.on_request_path for h in analyse_source(PYTHON.encode(), "python", None, {"cpu_heavy"})}
    assert hits["dedupe"] is True and hits["fetch_user"] is True  # (request) handlers
    assert hits["render"] is None  # nothing in this file calls it from a handler


GO = """package h

func (h *H) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ids := parse(r)
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				count++
			}
		}
	}
	for i := 0; i < len(ids); i++ {
		re := regexp.MustCompile(ids[i])
		_ = re
	}
	for _, id := range ids {
		sort.Strings(names)
		_ = id
	}
	h.helper(ids)
}

func (h *H) helper(ids []string) {
	for _, id := range ids {
		_ = json.Unmarshal(payload, &cfg)
	}
	for i := 0; i < 3; i++ {
		for _, id := range ids {
			_ = id
		}
	}
}

var pattern = regexp.MustCompile("^a+$")

func fine(ids []string) {
	for _, id := range ids {
		_ = pattern.MatchString(id)
	}
}
"""


def test_go_shapes() -> None:
    hits = analyse_source(GO.encode(), "go", None, {"cpu_heavy"})
    assert {(h.function, h.line, h.subkind) for h in hits} == {
        ("ServeHTTP", 6, "quadratic_comparison"),
        ("ServeHTTP", 13, "regex_in_loop"),
        ("ServeHTTP", 17, "sort_in_loop"),
        ("helper", 25, "parse_in_loop"),
    }
    # helper is called by ServeHTTP, the handler: on the request path.
    assert {h.function: h.on_request_path for h in hits}["helper"] is True


JAVA = """@RestController
class Orders {
  @GetMapping("/orders")
  List<Order> list(List<Order> orders, List<String> blocked) {
    String csv = "";
    for (Order o : orders) {
      csv += o.id();
      Pattern p = Pattern.compile(o.filter());
      if (blocked.contains(o.id())) { continue; }
    }
    for (Order o : orders) {
      for (Order other : orders) {
        if (o.equals(other)) { continue; }
      }
    }
    for (Order o : orders) {
      for (Line l : o.lines()) { total += l.price(); }
    }
    return orders;
  }
}
"""


def test_java_shapes() -> None:
    hits = analyse_source(JAVA.encode(), "java", None, {"cpu_heavy"})
    assert {(h.function, h.line, h.subkind) for h in hits} == {
        ("list", 7, "string_concat_in_loop"),
        ("list", 8, "regex_in_loop"),
        ("list", 9, "linear_search_in_loop"),
        ("list", 12, "quadratic_comparison"),
    }
    assert all(h.on_request_path is True for h in hits)


JS = """const fs = require('fs');
app.get('/report', (req, res) => {
  const users = req.body.users;
  const dupes = users.filter((u) => users.some((v) => v.email === u.email && v !== u));
  const cfg = fs.readFileSync('/etc/app.json');
  for (const u of users) {
    const re = new RegExp(u.pattern);
    JSON.parse(cfg);
  }
  res.json(dupes);
});
function fine(users) {
  const byEmail = new Map(users.map((u) => [u.email, u]));
  for (const u of users) { byEmail.get(u.email); }
  for (const k of ['a', 'b']) { for (const u of users) { u.x = k; } }
}
"""


def test_javascript_shapes() -> None:
    hits = analyse_source(JS.encode(), "javascript", None, {"cpu_heavy"})
    assert {(h.line, h.subkind) for h in hits} == {
        (4, "quadratic_comparison"),
        (5, "blocking_in_async"),
        (7, "regex_in_loop"),
        (8, "parse_in_loop"),
    }
    assert {h.function for h in hits} == {"GET /report handler"}


@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python", "def f(xs):\n    for a in range(10):\n        for b in range(5):\n            print(a, b)\n"),
        ("python", "async def f(client):\n    r = await client.get('/x')\n    await asyncio.sleep(1)\n    return r\n"),
        ("go", "package p\nfunc f() {\n\tfor {\n\t\ttime.Sleep(time.Second)\n\t\tpoll()\n\t}\n}\n"),
        ("java", "class A { void f(int[] xs) { for (int i = 0; i < 10; i++) { for (int j = 0; j < 4; j++) { } } } }"),
        ("javascript", "function f(xs) { const s = new Set(xs); return xs.filter((x) => s.has(x)); }"),
    ],
)
def test_bounded_or_linear_code_is_not_cpu_heavy(language: str, source: str) -> None:
    assert cpu(language, source) == set()
