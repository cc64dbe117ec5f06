"""The edge's block rules: a rule's networks go into the gateway's configuration, the rest of the
file stays as it was, and a malformed request names its field."""

from __future__ import annotations

import pytest
import yaml

from warroom.lab import edge
from warroom.lab.repo import template_text
from warroom.lab.topology import LabError

GATEWAY = template_text(edge.CONFIG)


def test_a_rule_is_set_changed_and_removed_and_the_rest_is_kept() -> None:
    blocked = edge.with_rule(GATEWAY, "warroom-auth", ["100.64.0.0/20"])
    assert yaml.safe_load(blocked)[edge.SECTION] == {"warroom-auth": ["100.64.0.0/20"]}
    assert blocked.startswith(GATEWAY[: GATEWAY.index(f"{edge.SECTION}:")])  # comments and settings kept
    both = edge.with_rule(blocked + "# the end\n", "ops-manual", ["203.0.113.0/24"])
    assert yaml.safe_load(both)[edge.SECTION] == {"warroom-auth": ["100.64.0.0/20"], "ops-manual": ["203.0.113.0/24"]}
    assert both.endswith("# the end\n")
    assert edge.with_rule(edge.with_rule(both, "ops-manual", []), "warroom-auth", []) == GATEWAY + "# the end\n"


def test_a_configuration_without_the_section_is_an_error() -> None:
    with pytest.raises(LabError, match="edge_blocks"):
        edge.with_rule("upstreams: {}\n", "warroom-auth", ["100.64.0.0/20"])


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"networks": ["100.64.0.0/20"]}, "rule"),
        ({"rule": "Bad Rule", "networks": []}, "rule"),
        ({"rule": "warroom-auth", "networks": "100.64.0.0/20"}, "networks"),
        ({"rule": "warroom-auth", "networks": ["100.64.0.0/40"]}, "networks"),
    ],
)
def test_a_malformed_block_request_names_its_field(request_body: dict[str, object], field: str) -> None:
    with pytest.raises(LabError) as raised:
        edge.parse_request(request_body)
    assert raised.value.field == field


def test_networks_are_normalised() -> None:
    assert edge.parse_request({"rule": "warroom-auth", "networks": ["100.64.3.7/20", "2001:db8::1/64"]}) == (
        "warroom-auth",
        ["100.64.0.0/20", "2001:db8::/64"],
    )
