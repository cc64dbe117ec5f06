"""Scenario generator: complete incident bundles for a simulated e-commerce system, with ground truth."""

from __future__ import annotations

from pathlib import Path

from warroom.scenarios.registry import ScenarioInfo, get, infos


def list_scenarios() -> list[ScenarioInfo]:
    """Every scenario the generator knows, in catalogue order."""
    return infos()


def generate(name: str, seed: int, out: Path, scale: str = "default", repo: str = "both") -> Path:
    """Write the bundle of scenario `name` for `seed` into `out` and return `out`.

    `repo` chooses how the code repository is written: "bundle" (repo.bundle, a git bundle file),
    "checkout" (repo/, a clone with its .git), or "both".
    """
    from warroom.scenarios.generator import generate_bundle

    return generate_bundle(get(name), seed, Path(out), scale, repo)


__all__ = ["ScenarioInfo", "generate", "list_scenarios"]
