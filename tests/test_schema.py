"""The published JSON Schema of incident.yaml is the one the loader enforces."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from support_bundle import write_bundle
from warroom.sources.manifest import Manifest

SCHEMA = Path(__file__).parents[1] / "src" / "warroom" / "schemas" / "incident.schema.json"


def test_committed_schema_matches_the_model() -> None:
    published = json.loads(SCHEMA.read_text())
    generated = Manifest.model_json_schema()
    assert published["properties"] == json.loads(json.dumps(generated["properties"]))
    assert published["required"] == generated["required"]


def test_a_valid_manifest_passes_and_a_bad_one_fails(tmp_path: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    manifest = yaml.safe_load((write_bundle(tmp_path / "b") / "incident.yaml").read_text())
    jsonschema.validate(manifest, schema)
    manifest["slo"]["error_rate"] = "high"
    try:
        jsonschema.validate(manifest, schema)
    except jsonschema.ValidationError as exc:
        assert list(exc.absolute_path) == ["slo", "error_rate"]
    else:
        raise AssertionError("schema accepted a non-numeric error rate")
