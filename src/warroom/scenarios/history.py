"""The repository history and the change log around an incident: ordinary commits and deploys
over the preceding days, unrelated changes close to the onset, and the offending change."""

from __future__ import annotations

import numpy as np

from warroom.scenarios.base import Change, CodeChange, Plan
from warroom.scenarios.code import AUTHORS, ORDINARY_EDITS, Tree
from warroom.scenarios.repo import Commit
from warroom.scenarios.system import System


def ordinary_history(
    system: System, base: Tree, rng: np.random.Generator, count: int, end_s: float, days: float = 12.0
) -> tuple[list[Commit], list[Change], Tree]:
    """`count` ordinary commits ending at `end_s`, each deployed to its service a little later."""
    start_s = end_s - days * 86_400.0
    times = np.sort(rng.uniform(start_s, end_s, count))
    tree = base.copy()
    initial = Commit("Initial import of the shop services", AUTHORS[0][0], AUTHORS[0][1], int(start_s - 86_400),
                     dict(base.files), label="initial")  # fmt: skip
    commits = [initial]
    changes: list[Change] = []
    versions: dict[str, int] = {}
    for index, at in enumerate(times):
        edit = ORDINARY_EDITS[int(rng.integers(len(ORDINARY_EDITS)))]
        service, message, files = edit(tree, system, rng)
        tree.files.update({k: v for k, v in files.items() if v is not None})
        author = AUTHORS[int(rng.integers(len(AUTHORS)))]
        label = f"c{index}"
        commits.append(Commit(message, author[0], author[1], int(at), files, label=label))
        deploy_at = float(at + rng.uniform(15, 90) * 60)
        if service in system.services and system.services[service].language and deploy_at < end_s:
            versions[service] = versions.get(service, 0) + 1
            version = f"v1.{8 + versions[service] // 10}.{versions[service] % 10}"
            kind = "config" if files and all(p.startswith("deploy/") for p in files) else "deploy"
            changes.append(
                Change(deploy_at, service, kind, f"{service} {version}: {message.split(': ', 1)[-1]}", version,
                       label, author[0])
            )  # fmt: skip
        elif service == "database" and deploy_at < end_s:
            changes.append(Change(deploy_at, "database", "migration", message, None, label, author[0]))
    return commits, changes, tree


def unrelated_changes(system: System, rng: np.random.Generator, onset_s: float, exclude: str) -> list[Change]:
    """Changes that happen near the onset but have nothing to do with it (an SRE must rule them out)."""
    others = [n for n, s in system.services.items() if s.language and n != exclude]
    picks = rng.choice(len(others), size=3, replace=False)
    out = [
        Change(onset_s - rng.uniform(35, 80) * 60, others[int(picks[0])], "config",
               f"{others[int(picks[0])]}: raise log sampling to 10%", author=AUTHORS[2][0]),
        Change(onset_s - rng.uniform(5, 30) * 60, others[int(picks[1])], "feature_flag",
               f"{others[int(picks[1])]}: enable flag 'new_recommendations_widget' for 20% of users",
               author=AUTHORS[5][0]),
        Change(onset_s + rng.uniform(3, 12) * 60, others[int(picks[2])], "config",
               f"{others[int(picks[2])]}: rotate log files hourly", author=AUTHORS[6][0]),
    ]  # fmt: skip
    return out


def assemble(
    ordinary: list[Commit],
    changes: list[Change],
    plan: Plan,
    code: CodeChange | None,
    rng: np.random.Generator,
    system: System,
) -> tuple[list[Commit], list[Change]]:
    """Insert the offending commit (and a later unrelated one) and its change into the history."""
    commits = list(ordinary)
    all_changes = list(changes)
    if code is not None and plan.change is not None:
        commit_at = int(plan.change.time_s - rng.uniform(40, 120) * 60)
        commits.append(Commit(code.message, code.author[0], code.author[1], commit_at, code.files, label="offending"))
        # A colleague's commit lands after it, so HEAD is not the bad one.
        other = [n for n, s in system.services.items() if s.language and n != plan.service]
        svc = other[int(rng.integers(len(other)))]
        readme_note = f"services/{svc}/CHANGELOG.md"
        author = AUTHORS[int(rng.integers(len(AUTHORS)))]
        later = commit_at + int(rng.uniform(5, 30) * 60)
        note: dict[str, str | None] = {readme_note: f"# {svc} changelog\n\n- clearer error messages\n"}
        commits.append(
            Commit(f"{svc}: changelog for the next release", author[0], author[1], later, note, label="after")
        )
    if plan.change is not None:
        all_changes.append(plan.change)
    all_changes.extend(plan.extra_changes)
    commits.sort(key=lambda c: c.time_s)
    all_changes.sort(key=lambda c: c.time_s)
    for number, change in enumerate(all_changes, start=1000):
        change.id = f"CHG-{number}"
    return commits, all_changes
