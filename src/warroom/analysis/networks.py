"""The networks an attack came from: the fewest address blocks that hold the failing sources and
none of the clients the system knew before, so a block rule names a few prefixes, not thousands of
addresses, and leaves the known clients alone.

Credential stuffing spreads over many addresses, each trying a few times: blocking the loudest
fifty stops little, a per-address rate limit stops nothing. A range of addresses the attacker
rents or controls is one block when no known client sits in it. A known address that fails is
left out (blocking it blocks its users), and so is a block that holds too few of the failures to
be the attack (a new customer mistyping a password): the list covers what it can and says how much.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from itertools import accumulate

from pydantic import BaseModel

# The widest block one rule may name: a /16 of IPv4 (65 536 addresses), a /48 of IPv6 (one site).
WIDEST = {4: 16, 6: 48}
BITS = {4: 32, 6: 128}
MAX_BLOCKS = 32  # a rule an operator reviews at a glance; `covered` says what the rest would add
# A block is part of the attack when it holds at least this share of the failures: one new customer's
# typos are not, one brute-forcing address is.
MIN_SHARE = 0.01


class NetworkBlock(BaseModel):
    network: str
    sources: int  # failing addresses inside it
    failures: int  # their failures


class AttackNetworks(BaseModel):
    blocks: list[NetworkBlock]
    covered: int  # failures the blocks hold
    failures: int  # failures in all

    @property
    def networks(self) -> list[str]:
        return [block.network for block in self.blocks]


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None  # a hostname or a malformed field: not an address a rule can name
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _weighed(failures: Mapping[str, int]) -> dict[int, tuple[list[int], list[int]]]:
    """Per IP version: the failing addresses (sorted, as integers) and the running total of their failures."""
    by_version: dict[int, dict[int, int]] = {4: {}, 6: {}}
    for text, count in failures.items():
        address = _address(text)
        if address is not None and count > 0:
            values = by_version[address.version]
            values[int(address)] = values.get(int(address), 0) + int(count)
    out: dict[int, tuple[list[int], list[int]]] = {}
    for version, values in by_version.items():
        ordered = sorted(values)
        out[version] = (ordered, list(accumulate((values[a] for a in ordered), initial=0)))
    return out


def _count(values: list[int], low: int, high: int) -> int:
    """How many of the sorted `values` lie in [low, high)."""
    return bisect_left(values, high) - bisect_left(values, low)


def _blocks(version: int, attackers: list[int], known: list[int]) -> list[tuple[int, int, int, int]]:
    """(first address, prefix length, the slice [lo, hi) of `attackers` inside) of the blocks, by
    halving the address space until a half holds attackers and no known address, then narrowing it
    to its attackers' span."""
    bits, widest = BITS[version], WIDEST[version]
    found: list[tuple[int, int, int, int]] = []
    stack = [(0, 0)]  # (first address, prefix length)
    while stack:
        first, length = stack.pop()
        size = 1 << (bits - length)
        lo, hi = bisect_left(attackers, first), bisect_left(attackers, first + size)
        if lo == hi:
            continue
        if _count(known, first, first + size) == 0:
            # The smallest prefix that holds every attacker of this half (their common leading bits).
            span = (attackers[lo] ^ attackers[hi - 1]).bit_length()
            if bits - span >= widest:
                found.append((attackers[lo] >> span << span, bits - span, lo, hi))
                continue
        if length == bits:
            continue  # a known address that attacks: not blocked
        half = size >> 1
        stack.extend([(first + half, length + 1), (first, length + 1)])
    return found


def attack_networks(
    failures: Mapping[str, int], known: Iterable[str], limit: int = MAX_BLOCKS, min_share: float = MIN_SHARE
) -> AttackNetworks:
    """The blocks that hold the failing addresses (`failures`: address → its failures) and none of
    the `known` ones, most failures first: at most `limit`, each with `min_share` of the failures."""
    failing, familiar = _weighed(failures), _weighed(dict.fromkeys(known, 1))
    total = sum(running[-1] for _, running in failing.values())
    blocks: list[NetworkBlock] = []
    for version in (4, 6):
        addresses, running = failing[version]
        for first, length, lo, hi in _blocks(version, addresses, familiar[version][0]):
            held = running[hi] - running[lo]
            if held >= min_share * total:
                network = str(ipaddress.ip_network((first, length)))
                blocks.append(NetworkBlock(network=network, sources=hi - lo, failures=held))
    blocks.sort(key=lambda block: (-block.failures, block.network))
    kept = blocks[:limit]
    return AttackNetworks(blocks=kept, covered=sum(block.failures for block in kept), failures=total)


def listed(networks: list[str], limit: int = 5) -> str:
    """The first `limit` networks for a sentence, an ellipsis saying there are more."""
    return ", ".join(networks[:limit]) + (" …" if len(networks) > limit else "")
