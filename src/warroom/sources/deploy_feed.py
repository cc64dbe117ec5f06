"""The deploy log by file or URL as a live change source: fetched as it is (httpx for a URL),
saved as received and read by the deploy log reader (`sources/raw/deploy_log.py`)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import httpx

from warroom.errors import InputError
from warroom.sources.captured import EventRead, RawResponse, read_back
from warroom.sources.config import DeployLogConfig
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.reader import ReadOptions

SUFFIX_OF_TYPE = {"application/yaml": ".yaml", "application/x-yaml": ".yaml", "text/yaml": ".yaml", "text/csv": ".csv"}


class DeployFeedError(InputError):
    """The deploy log cannot be fetched."""


def _fetch(config: DeployLogConfig, client: httpx.Client | None) -> tuple[bytes, str, str]:
    """(body, file suffix, where) of the deploy log."""
    if config.path is not None:
        path = Path(config.path)
        try:
            return path.read_bytes(), path.suffix or ".jsonl", str(path)
        except OSError as exc:
            raise DeployFeedError(f"cannot be read ({exc.strerror})", file=path) from None
    assert config.url is not None
    http = client or httpx.Client(headers=config.headers(section="sources.deploy_log"), timeout=config.timeout_s)
    try:
        answer = http.get(config.url)
    except httpx.HTTPError as exc:
        raise DeployFeedError(f"cannot fetch ({exc.__class__.__name__})", file=config.url) from None
    if answer.status_code != 200:
        raise DeployFeedError(f"answered {answer.status_code}", file=config.url)
    media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
    suffix = PurePosixPath(urlparse(config.url).path).suffix or SUFFIX_OF_TYPE.get(media, ".jsonl")
    return answer.content, suffix, config.url


def deploy_log(config: DeployLogConfig, client: httpx.Client | None = None) -> EventRead:
    """Every change the deploy log holds (the analyses take the period they need from it)."""
    body, suffix, where = _fetch(config, client)
    query = SourceQuery(source="deploy-log", modality=Modality.CHANGES, text="every entry", location=where)
    return read_back([RawResponse(f"changes/deploy-log{suffix}", body)], [query], ReadOptions())
