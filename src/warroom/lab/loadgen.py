"""The lab's load generator (`python -m warroom.lab.loadgen`): open-loop traffic at the gateway.

Each traffic profile of traffic.yaml is a Poisson arrival process at its rate: requests start on
schedule whatever the answers, as real users do (a slow shop does not slow its customers down,
it makes them wait). A request is one visitor action from the profile's mix: browse a category,
open a product, add to cart, buy (add then check out), log in, or — for a list of leaked
credentials — try a login. Visitors come from many client addresses (X-Forwarded-For, as a load
balancer sets it). The file is re-read when it changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from pydantic import BaseModel, Field

MAX_IN_FLIGHT = 300
BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)


class AddressPool(BaseModel):
    network: str = "198.18.0.0/15"
    count: int = Field(100_000, ge=1)


class Profile(BaseModel):
    name: str
    rate_per_second: float = Field(ge=0)
    users: int = Field(100_000, ge=1)
    products: int = Field(1_000_000, ge=1)
    hot_products: int = Field(2000, ge=1)
    mix: dict[str, float]
    addresses: AddressPool = AddressPool()
    # Share of logins with the right password (typos for shoppers; hits for a leaked list).
    valid_logins: float = Field(0.97, ge=0, le=1)


class Traffic(BaseModel):
    profiles: list[Profile]


def read_traffic(path: Path) -> Traffic:
    return Traffic.model_validate(yaml.safe_load(path.read_text()) or {"profiles": []})


def write_traffic(path: Path, traffic: Traffic) -> None:
    # Written whole then renamed: the generator re-reads the file when it changes.
    header = "# Traffic of the lab's load generator (re-read when this file changes).\n"
    partial = path.with_suffix(".partial")
    partial.write_text(header + yaml.safe_dump(traffic.model_dump(), sort_keys=False))
    partial.replace(path)


def default_traffic(rate: float, products: int) -> Traffic:
    users = max(products // 10, 1000)
    profile = Profile(
        name="shoppers",
        rate_per_second=rate,
        users=users,
        products=products,
        mix={"browse": 35, "product": 35, "purchase": 12, "cart": 8, "login": 10},
        addresses=AddressPool(network="198.18.0.0/15", count=min(users, 100_000)),
    )
    return Traffic(profiles=[profile])


class Visitor:
    """One action of one visitor of a profile."""

    def __init__(self, client: httpx.AsyncClient, profile: Profile, rng: random.Random) -> None:
        self.client = client
        self.profile = profile
        self.rng = rng
        self.network = ipaddress.ip_network(profile.addresses.network)

    def _user(self) -> int:
        return self.rng.randint(1, self.profile.users)

    def _headers(self, user: int) -> dict[str, str]:
        slot = user % min(self.profile.addresses.count, self.network.num_addresses)
        return {
            "x-forwarded-for": str(self.network[slot]),
            "user-agent": BROWSERS[user % len(BROWSERS)],
            "x-user-id": str(user),
        }

    def _product(self) -> int:
        if self.rng.random() < 0.5:
            return self.rng.randint(1, min(self.profile.hot_products, self.profile.products))
        return self.rng.randint(1, self.profile.products)

    async def browse(self, user: int) -> int:
        params = {"category": self.rng.randint(1, 200), "page": min(int(self.rng.expovariate(0.7)), 40)}
        return (await self.client.get("/api/products", params=params, headers=self._headers(user))).status_code

    async def product(self, user: int) -> int:
        return (await self.client.get(f"/api/products/{self._product()}", headers=self._headers(user))).status_code

    async def cart(self, user: int) -> int:
        item = {"user_id": user, "product_id": self._product(), "quantity": self.rng.randint(1, 2)}
        return (await self.client.post("/api/cart", json=item, headers=self._headers(user))).status_code

    async def purchase(self, user: int) -> int:
        for _ in range(self.rng.randint(1, 2)):
            status = await self.cart(user)
            if status >= 400:
                return status
        card = "4000000000000002" if self.rng.random() < 0.02 else "4242424242424242"
        order = {"user_id": user, "card_number": card, "card_expiry": f"{self.rng.randint(1, 12):02d}/29"}
        return (await self.client.post("/api/checkout", json=order, headers=self._headers(user))).status_code

    async def login(self, user: int) -> int:
        right = self.rng.random() < self.profile.valid_logins
        password = f"pw-{user}" if right else f"pw-{user}{self.rng.randint(0, 9)}!"
        body = {"email": f"user{user}@example.com", "password": password}
        return (await self.client.post("/api/login", json=body, headers=self._headers(user))).status_code

    async def credential_list(self, user: int) -> int:
        """A leaked e-mail/password pair tried from one of many addresses (rarely right)."""
        address_user = self.rng.randint(0, self.profile.addresses.count - 1)
        headers = self._headers(address_user)
        headers["user-agent"] = BROWSERS[self.rng.randrange(len(BROWSERS))]
        right = self.rng.random() < self.profile.valid_logins
        password = f"pw-{user}" if right else self.rng.choice(("123456", "password1", "qwerty", f"{user}Summer24"))
        body = {"email": f"user{user}@example.com", "password": password}
        return (await self.client.post("/api/login", json=body, headers=headers)).status_code

    def action(self, name: str) -> Callable[[int], Awaitable[int]]:
        actions: dict[str, Callable[[int], Awaitable[int]]] = {
            "browse": self.browse,
            "product": self.product,
            "cart": self.cart,
            "purchase": self.purchase,
            "login": self.login,
            "credential_list": self.credential_list,
        }
        return actions[name]


class LoadGenerator:
    def __init__(self, traffic_path: Path, target: str, stats_log: Path, seed: int | None = None) -> None:
        self.traffic_path = traffic_path
        self.stats_log = stats_log
        self.client = httpx.AsyncClient(
            base_url=target,
            timeout=30,
            limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=50),
        )
        self.rng = random.Random(seed)
        self.in_flight = 0
        self.stats: Counter[str] = Counter()

    async def _one(self, visitor: Visitor, action: str, profile: str) -> None:
        self.in_flight += 1
        try:
            status = await visitor.action(action)(visitor._user())
            self.stats[f"{profile}.{action}.{status}"] += 1
        except httpx.HTTPError as exc:
            self.stats[f"{profile}.{action}.{type(exc).__name__}"] += 1
        finally:
            self.in_flight -= 1

    async def _arrivals(self, profile: Profile) -> None:
        if profile.rate_per_second <= 0 or not profile.mix:
            return
        visitor = Visitor(self.client, profile, random.Random(self.rng.random()))
        names, weights = list(profile.mix), list(profile.mix.values())
        pending: set[asyncio.Task[None]] = set()
        next_at = time.monotonic()
        while True:
            next_at += self.rng.expovariate(profile.rate_per_second)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if self.in_flight >= MAX_IN_FLIGHT:
                self.stats[f"{profile.name}.dropped"] += 1
                continue
            task = asyncio.create_task(self._one(visitor, self.rng.choices(names, weights)[0], profile.name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    def _write_stats(self) -> None:
        line = {"timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "in_flight": self.in_flight}
        line.update(self.stats)
        self.stats.clear()
        with self.stats_log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    async def run(self) -> None:
        self.stats_log.parent.mkdir(parents=True, exist_ok=True)
        mtime = -1.0
        tasks: list[asyncio.Task[None]] = []
        last_stats = time.monotonic()
        while True:
            current = self.traffic_path.stat().st_mtime if self.traffic_path.exists() else 0.0
            if current != mtime:
                mtime = current
                for task in tasks:
                    task.cancel()
                traffic = read_traffic(self.traffic_path) if current else Traffic(profiles=[])
                tasks = [asyncio.create_task(self._arrivals(profile)) for profile in traffic.profiles]
            if time.monotonic() - last_stats >= 10:
                self._write_stats()
                last_stats = time.monotonic()
            await asyncio.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traffic", type=Path, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(LoadGenerator(args.traffic, args.target, args.log).run())


if __name__ == "__main__":
    main()
