"""Whether a function is on a request path: handlers of each framework shape, functions they call,
and code that never serves a request (tests, entry points, scheduled tasks)."""

from __future__ import annotations

from warroom.analysis.code_patterns import parse
from warroom.analysis.code_patterns.reach import request_paths


def paths(path: str, language: str, source: str) -> dict[str | None, bool | None]:
    parsed = parse(path, source.encode(), language)
    result = request_paths(parsed)
    return {f.name: result[f.node.id] for f in parsed.functions}


def test_go_handlers_registrations_and_grpc() -> None:
    source = """package s

func routes(mux *http.ServeMux) {
	mux.HandleFunc("/orders", listOrders)
}

func listOrders(w http.ResponseWriter, r *http.Request) { load() }

func load() {}

func (s *Server) GetUser(ctx context.Context, req *pb.GetUserRequest) (*pb.User, error) { return nil, nil }

func viaRegistration() {}

func main() { load() }

func orphan() {}
"""
    got = paths("svc/main.go", "go", source)
    assert got["listOrders"] is True and got["load"] is True and got["GetUser"] is True
    assert got["main"] is False and got["orphan"] is None


def test_java_controllers_and_scheduled_tasks() -> None:
    source = """@RestController
class Orders {
  @PostMapping("/orders")
  public Order create(@RequestBody Order o) { return save(o); }
  private Order save(Order o) { return o; }
  @Scheduled(fixedRate = 1000)
  public void sweep() { }
}"""
    got = paths("src/main/java/Orders.java", "java", source)
    assert got == {"create": True, "save": True, "sweep": False}


def test_express_routes_named_and_inline_and_test_files() -> None:
    source = """router.get('/a', listA);
router.post('/b', async (req, res) => { res.json(await build(req.body)); });
function listA(req, res) { res.json([]); }
async function build(body) { return body; }
function unused() {}
"""
    got = paths("src/routes.js", "javascript", source)
    assert got["listA"] is True and got["POST /b handler"] is True and got["build"] is True
    assert got["unused"] is None
    assert set(paths("src/routes.test.js", "javascript", source).values()) == {False}


def test_python_decorators_views_and_tasks() -> None:
    source = """@app.get("/items")
async def items(q: str):
    return helper(q)

def helper(q):
    return q

def view(request):
    return 1

@celery.task
def nightly():
    pass
"""
    got = paths("app/views.py", "python", source)
    assert got == {"items": True, "helper": True, "view": True, "nightly": False}
