"""The simulated e-commerce system: services, replicas, their own latency, and the call trees of the
user-facing endpoints (which service calls which, with what timeout and retry policy)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Service:
    """One service of the system and the parameters of its healthy behaviour."""

    name: str
    kind: str  # "service" | "database" | "cache" | "external" | "gateway"
    language: str | None  # "go" | "python" | None (not our code)
    replicas: int
    median_ms: float  # own processing time (excluding calls), median
    sigma: float  # log-normal spread of the own processing time
    error_rate: float  # background failure probability per request (not the fault)
    cpu_base: float  # idle CPU fraction
    cpu_per_rps: float  # CPU fraction per request/s on one replica
    memory_base: float  # steady-state memory fraction
    pool_size: int = 0  # DB connection pool per replica; 0 = no pool
    team: str = "platform"


@dataclass(frozen=True)
class Call:
    """A synchronous call from a parent span to a child subtree."""

    node: Node
    timeout_ms: float = 10_000.0
    retries: int = 0
    critical: bool = True  # a failure of a non-critical call is tolerated (e.g. cache miss → database)
    gate: str | None = None  # made only while Effects.gates[gate] is true (code that a deploy adds)


@dataclass(frozen=True)
class Node:
    """One span in an endpoint's call tree."""

    service: str
    operation: str
    calls: tuple[Call, ...] = ()
    statement: str | None = None  # SQL text for database spans


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    share: float  # fraction of the front-door traffic
    root: Node
    business: str = ""  # "checkout", "cart", "browse", "login" — how customer impact is counted


@dataclass
class System:
    services: dict[str, Service]
    endpoints: list[Endpoint]
    entry: str = "gateway"
    peak_rps: float = 400.0  # front-door requests per second at the daily peak
    extra_metrics: int = 0  # additional per-service metrics at large scale (process_*, runtime_*)
    owners: dict[str, str] = field(default_factory=dict)

    def with_replicas(self, service: str, replicas: int) -> System:
        services = dict(self.services)
        services[service] = replace(services[service], replicas=replicas)
        return System(services, self.endpoints, self.entry, self.peak_rps, self.extra_metrics, self.owners)

    def with_pool(self, service: str, pool_size: int) -> System:
        services = dict(self.services)
        services[service] = replace(services[service], pool_size=pool_size)
        return System(services, self.endpoints, self.entry, self.peak_rps, self.extra_metrics, self.owners)

    def with_call(self, service: str, operation: str, call: Call) -> System:
        """The system where every `service.operation` span also makes `call` (e.g. a new query)."""

        def graft(node: Node) -> Node:
            calls = tuple(replace(c, node=graft(c.node)) for c in node.calls)
            if node.service == service and node.operation == operation:
                calls = (*calls, call)
            return replace(node, calls=calls)

        endpoints = [replace(e, root=graft(e.root)) for e in self.endpoints]
        return System(self.services, endpoints, self.entry, self.peak_rps, self.extra_metrics, self.owners)

    def topology(self) -> dict[str, list[str]]:
        """Service → services it calls, from the endpoints' call trees."""
        graph: dict[str, set[str]] = {name: set() for name in self.services}

        def walk(node: Node) -> None:
            for call in node.calls:
                if call.node.service != node.service:
                    graph[node.service].add(call.node.service)
                walk(call.node)

        for endpoint in self.endpoints:
            walk(endpoint.root)
        return {name: sorted(deps) for name, deps in graph.items()}

    def operation_share(self, service: str, operation: str) -> float:
        """Fraction of a service's spans that run `operation`."""
        share = total = 0.0

        def walk(node: Node, weight: float) -> None:
            nonlocal share, total
            if node.service == service:
                total += weight
                share += weight if node.operation == operation else 0.0
            for call in node.calls:
                walk(call.node, weight)

        for endpoint in self.endpoints:
            walk(endpoint.root, endpoint.share)
        return share / total if total else 1.0

    def calls_per_request(self) -> dict[str, float]:
        """Average spans per front-door request for each service (without retries)."""
        counts: dict[str, float] = dict.fromkeys(self.services, 0.0)

        def walk(node: Node, weight: float) -> None:
            counts[node.service] += weight
            for call in node.calls:
                walk(call.node, weight)

        for endpoint in self.endpoints:
            walk(endpoint.root, endpoint.share)
        return counts


def _svc(
    name: str,
    kind: str,
    language: str | None,
    replicas: int,
    median_ms: float,
    sigma: float = 0.35,
    error_rate: float = 0.001,
    cpu_base: float = 0.08,
    cpu_per_rps: float = 0.004,
    memory_base: float = 0.45,
    pool_size: int = 0,
    team: str = "platform",
) -> Service:
    return Service(
        name, kind, language, replicas, median_ms, sigma, error_rate, cpu_base, cpu_per_rps, memory_base,
        pool_size, team,
    )  # fmt: skip


# SQL used by the healthy code; the generated repository contains the same statements.
SQL = {
    "products": "SELECT id, name, price_cents, stock FROM products WHERE category_id = $1 LIMIT 50",
    "product": "SELECT id, name, description, price_cents FROM products WHERE id = $1",
    "stock": "SELECT quantity FROM inventory WHERE product_id = $1",
    "reserve": "UPDATE inventory SET quantity = quantity - $2 WHERE product_id = $1 AND quantity >= $2",
    "cart_add": "INSERT INTO cart_items (cart_id, product_id, quantity) VALUES ($1, $2, $3)",
    "order": "INSERT INTO orders (id, customer_id, total_cents, status) VALUES ($1, $2, $3, 'pending')",
    "payment": "INSERT INTO payments (order_id, amount_cents, provider_ref) VALUES ($1, $2, $3)",
    "user": "SELECT id, password_hash, locked FROM users WHERE email = $1",
    "session": "SELECT user_id FROM sessions WHERE token = $1",
    "orders": "SELECT id, total_cents, status FROM orders WHERE customer_id = $1 ORDER BY created_at DESC",
}


def _db(op: str, key: str) -> Node:
    return Node("database", op, statement=SQL[key])


def _cache(op: str) -> Call:
    return Call(Node("cache", op), timeout_ms=200.0, critical=False)


def ecommerce(large: bool = False) -> System:
    """The e-commerce system of the seed documents: gateway, checkout, payment, cart, catalog,
    inventory, auth, a PostgreSQL database, a cache and an external payment provider."""
    services = {
        "gateway": _svc("gateway", "gateway", "go", 3, 2.0, 0.25, 0.0002, 0.06, 0.0009, 0.30, team="edge"),
        "auth": _svc("auth", "service", "python", 3, 4.0, 0.3, 0.0005, 0.07, 0.0012, 0.40, 10, "identity"),
        "catalog": _svc("catalog", "service", "python", 3, 9.0, 0.35, 0.0008, 0.1, 0.003, 0.5, 16, "catalog"),
        "cart": _svc("cart", "service", "python", 3, 6.0, 0.35, 0.0008, 0.08, 0.003, 0.45, 12, "shopping"),
        "checkout": _svc("checkout", "service", "go", 3, 12.0, 0.35, 0.001, 0.07, 0.006, 0.35, 20, "orders"),
        "inventory": _svc("inventory", "service", "go", 2, 5.0, 0.3, 0.0006, 0.06, 0.003, 0.3, 12, "catalog"),
        "payment": _svc("payment", "service", "go", 2, 8.0, 0.3, 0.0008, 0.06, 0.005, 0.3, 10, "payments"),
        "database": _svc("database", "database", None, 1, 1.6, 0.5, 0.0, 0.12, 0.0006, 0.6),
        "cache": _svc("cache", "cache", None, 1, 0.4, 0.3, 0.0, 0.05, 0.00005, 0.5),
        "payment-provider": _svc("payment-provider", "external", None, 1, 160.0, 0.3, 0.002, 0, 0, 0),
    }
    auth = Call(Node("auth", "ValidateToken", (_cache("GET session"),)), timeout_ms=1000.0, retries=1)
    products = Node(
        "catalog", "ListProducts", (_cache("GET products"), Call(_db("SELECT products", "products"), 3000.0))
    )
    product = Node("catalog", "GetProduct", (_cache("GET product"), Call(_db("SELECT products", "product"), 3000.0)))
    stock = Call(Node("inventory", "CheckStock", (Call(_db("SELECT inventory", "stock"), 2000.0),)), 2000.0)
    cart_add = Node(
        "cart",
        "AddItem",
        (stock, Call(_db("INSERT cart_items", "cart_add"), 3000.0), _cache("SET cart")),
    )
    cart_get = Node("cart", "GetCart", (_cache("GET cart"),))
    charge = Node(
        "payment",
        "Charge",
        (
            Call(Node("payment-provider", "POST /v1/charges"), timeout_ms=3000.0, retries=1),
            Call(_db("INSERT payments", "payment"), 3000.0),
        ),
    )
    checkout = Node(
        "checkout",
        "PlaceOrder",
        (
            Call(cart_get, 2000.0),
            Call(Node("inventory", "Reserve", (Call(_db("UPDATE inventory", "reserve"), 2000.0),)), 2000.0),
            Call(_db("INSERT orders", "order"), 5000.0),
            Call(charge, 8000.0),
        ),
    )
    orders = Node("checkout", "ListOrders", (Call(_db("SELECT orders", "orders"), 5000.0),))
    login = Node("auth", "Login", (Call(_db("SELECT users", "user"), 2000.0), _cache("SET session")))

    def front(op: str, child: Node, with_auth: bool = True, timeout: float = 10_000.0) -> Node:
        calls = (auth, Call(child, timeout)) if with_auth else (Call(child, timeout),)
        return Node("gateway", op, calls)

    endpoints = [
        Endpoint("GET", "/api/products", 0.36, front("GET /api/products", products, False), "browse"),
        Endpoint("GET", "/api/products/{id}", 0.22, front("GET /api/products/{id}", product, False), "browse"),
        Endpoint("POST", "/api/cart/items", 0.12, front("POST /api/cart/items", cart_add), "cart"),
        Endpoint("GET", "/api/cart", 0.10, front("GET /api/cart", cart_get), "cart"),
        Endpoint("POST", "/api/checkout", 0.08, front("POST /api/checkout", checkout, timeout=15_000.0), "checkout"),
        Endpoint("GET", "/api/orders", 0.05, front("GET /api/orders", orders), "orders"),
        Endpoint("POST", "/api/login", 0.07, front("POST /api/login", login, False), "login"),
    ]  # fmt: skip
    system = System(services, endpoints)
    if large:
        system = _add_fleet(system)
    return system


# Names for the additional services of the large scale: a realistic fleet of small services that
# the catalog pages fan out to, each with its own metrics but few requests.
_FLEET_AREAS = ("recs", "search", "reviews", "pricing", "promo", "shipping", "tax", "media", "ads", "geo")


def _add_fleet(system: System, count: int = 196) -> System:
    services = dict(system.services)
    fleet_calls: list[Call] = []
    for index in range(count):
        name = f"{_FLEET_AREAS[index % len(_FLEET_AREAS)]}-{index // len(_FLEET_AREAS):02d}"
        language = "go" if index % 2 == 0 else "python"
        services[name] = _svc(name, "service", language, 2, 3.0 + index % 7, 0.3, 0.0005, 0.05, 0.004, 0.4)
        fleet_calls.append(Call(Node(name, "Fetch"), timeout_ms=500.0, critical=False))
    # Each browse request fans out to a rotating handful of fleet services: one endpoint per slice
    # keeps the trees small while every fleet service receives traffic.
    endpoints = list(system.endpoints)
    browse = endpoints[0]
    slices = [tuple(fleet_calls[i : i + 4]) for i in range(0, count, 4)]
    share = browse.share / (len(slices) + 1)
    new = [replace(browse, share=share)]
    for calls in slices:
        root = browse.root
        catalog_call = root.calls[0]
        widened = replace(catalog_call.node, calls=catalog_call.node.calls + calls)
        new.append(
            Endpoint(
                browse.method,
                browse.path,
                share,
                replace(root, calls=(replace(catalog_call, node=widened),)),
                browse.business,
            )
        )
    endpoints[0:1] = new
    return System(services, endpoints, system.entry, system.peak_rps * 4, extra_metrics=12)
