"""The alert as format v1's manifest writes it: the `alert:` block of a YAML file (an
`incident.yaml`, or a file holding only that block), given with `--alert` or in the folder."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from warroom.errors import BundleError
from warroom.sources.manifest import Alert
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import decoded_head
from warroom.yamlfile import line_of, read_yaml

_ALERT_BLOCK = re.compile(r"^alert:\s*$", re.M)


class ManifestAlert:
    name = "alert block of a manifest (YAML)"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() not in (".yaml", ".yml"):
            return False  # before decoding: most files a bundle holds are not YAML
        text = decoded_head(head)
        return bool(_ALERT_BLOCK.search(text)) and "fired_at" in text

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        data, node = read_yaml(path, BundleError)
        block = data.get("alert") if isinstance(data, dict) else None
        if not isinstance(block, dict):
            raise BundleError("expected an 'alert:' mapping (name, fired_at, …)", file=path, line=1, field="alert")
        try:
            alert = Alert.model_validate(block)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ["alert", *(part for part in first["loc"] if isinstance(part, int | str))]
            message = first["msg"].removeprefix("Value error, ")
            raise BundleError(
                message, file=path, line=line_of(node, loc), field=".".join(str(p) for p in loc)
            ) from None
        labels = {**alert.labels, "source": alert.labels.get("source", "manifest")}
        alert = alert.model_copy(update={"labels": labels})
        return RawRead(alerts=[alert], notes=[f"alert {alert.name} fired at {alert.fired_at.isoformat()}"])
