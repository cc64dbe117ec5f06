"""The networks of an attack: few blocks that hold every attacking address the known clients leave
free, and no known client."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from warroom.analysis.networks import attack_networks

# Addresses drawn from a few /16s, so that attackers and known clients share networks.
ADDRESSES = st.builds(
    lambda high, low: str(ipaddress.IPv4Address((high << 16) | low)),
    st.sampled_from([0x0A01, 0x0A02, 0x6440, 0xCB00]),
    st.integers(0, 0xFFFF),
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(ADDRESSES, st.integers(1, 50), min_size=1, max_size=60), st.sets(ADDRESSES, max_size=60))
def test_blocks_hold_every_free_failure_and_no_known_client(failing: dict[str, int], known: set[str]) -> None:
    found = attack_networks(failing, known, limit=10_000, min_share=0.0)
    blocks = [ipaddress.ip_network(block.network) for block in found.blocks]
    for network, block in zip(blocks, found.blocks, strict=True):
        assert network.prefixlen >= 16
        assert not any(ipaddress.ip_address(a) in network for a in known), (network, known)
        inside = [a for a in failing if ipaddress.ip_address(a) in network]
        assert (block.sources, block.failures) == (len(inside), sum(failing[a] for a in inside))
    assert all(not a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    assert found.covered == sum(n for a, n in failing.items() if a not in known)
    assert found.failures == sum(failing.values())


def test_a_rented_range_is_one_block_beside_the_known_clients() -> None:
    rented = ipaddress.ip_network("100.64.0.0/10")
    customers = ipaddress.ip_network("198.18.0.0/15")
    failing = {str(rented[i]): 2 for i in range(2500)}
    failing |= {"198.18.0.15": 60, "198.18.0.22": 1, "not-an-address": 5, "::ffff:100.64.0.1": 1}
    known = [str(customers[i]) for i in range(0, 50_000, 7)]
    found = attack_networks(failing, known)
    # 198.18.0.15 sits among the customers and fails often: its own /32 is blocked, not their
    # network; 198.18.0.22 failed once, a customer's typo, not a part of the attack.
    assert found.networks == ["100.64.0.0/20", "198.18.0.15/32"]
    assert [(block.sources, block.failures) for block in found.blocks] == [(2500, 5001), (1, 60)]
    assert (found.covered, found.failures) == (5061, 5062)


def test_a_known_client_that_fails_is_not_blocked_and_the_list_is_bounded() -> None:
    found = attack_networks({"10.0.0.1": 9, "2001:db8::1": 1, "2001:db8::2": 1, "192.0.2.1": 1}, ["10.0.0.1"], limit=1)
    assert found.networks == ["2001:db8::/126"] and found.covered == 2 and found.failures == 12
