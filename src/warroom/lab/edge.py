"""The edge's block rules: client networks the gateway refuses, named per rule in its configuration
(`edge_blocks` of config/gateway.yaml), changed by a commit like any setting (as a WAF's rules go
through review and rollout) and deployed to the gateway by the change path's POST /block."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import yaml

from warroom.lab import repo as shop_repo
from warroom.lab.topology import LabError

EDGE_SERVICE = "gateway"
CONFIG = "config/gateway.yaml"
SECTION = "edge_blocks"
RULE = re.compile(r"[a-z0-9][a-z0-9\-]{0,62}")
DEFAULT_AUTHOR = "warroom <warroom@shop.example>"


def parse_request(request: dict[str, Any]) -> tuple[str, list[str]]:
    """The rule's name and its networks (none: remove the rule), each one checked."""
    rule = str(request.get("rule") or "")
    if not RULE.fullmatch(rule):
        raise LabError("a rule name of lowercase letters, digits and '-' is expected", field="rule")
    networks = request.get("networks", [])
    if not isinstance(networks, list):
        raise LabError("a list of networks (CIDR blocks) is expected", field="networks")
    try:
        return rule, [str(ipaddress.ip_network(str(network), strict=False)) for network in networks]
    except ValueError as exc:
        raise LabError(f"{exc}: a CIDR block is expected", field="networks") from None


def with_rule(text: str, rule: str, networks: list[str]) -> str:
    """The configuration `text` with `rule` set to `networks` (removed when none), the rest as it was.
    The section ends at the next line that begins at the margin (a key or a comment)."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{SECTION}:")), None)
    if start is None:
        raise LabError(f"no '{SECTION}' section", file=CONFIG, field=SECTION)
    end = next((j for j in range(start + 1, len(lines)) if lines[j][:1] not in (" ", "\t", "\n")), len(lines))
    rules = dict((yaml.safe_load("".join(lines[start:end])) or {}).get(SECTION) or {})
    if networks:
        rules[rule] = networks
    else:
        rules.pop(rule, None)
    section = yaml.safe_dump({SECTION: rules}, sort_keys=True) if rules else f"{SECTION}: {{}}\n"
    return "".join(lines[:start]) + section + "".join(lines[end:])


def commit_rule(repo: Path, rule: str, networks: list[str], author: str | None, reason: str) -> str:
    """Commit the rule's change to the gateway's configuration on the main branch; its sha."""
    before = (repo / CONFIG).read_text(encoding="utf-8")
    after = with_rule(before, rule, networks)
    if after == before:
        return shop_repo.head(repo)
    verb = f"block {len(networks)} network(s) ({', '.join(networks[:3])})" if networks else "remove the block"
    message = f"gateway: {verb} as rule {rule}\n\n{reason}\n" if reason else f"gateway: {verb} as rule {rule}\n"
    return shop_repo.commit_files(repo, {CONFIG: after}, author or DEFAULT_AUTHOR, message)
