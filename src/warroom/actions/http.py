"""HTTP request action: method, URL, headers, body; retries with exponential backoff; verify by status/body."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from warroom.actions.contract import ActionAdapter, Check, Params, RunOptions, StepResult
from warroom.incident import RiskLevel
from warroom.redact import redact

if TYPE_CHECKING:
    import httpx

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


class Probe(Params):
    """A request and what its answer must look like."""

    method: Method = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(default_factory=dict)  # header → environment variable with its value
    json_body: Any = None
    body: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])
    expect_body_contains: str | None = None


class HttpParams(Probe):
    retries: int = Field(default=3, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    verify: Probe | None = None  # e.g. a health endpoint after a restart request
    verify_attempts: int = Field(default=5, ge=1)  # a service takes a moment to come back
    undo: Probe | None = None


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retryable(exc: BaseException) -> bool:
    import httpx

    # Connection problems and 5xx/429 are worth another try; a 4xx will not change by retrying.
    return isinstance(exc, httpx.TransportError | _RetryableStatus)


def send(probe: Probe, *, attempts: int, backoff_s: float, backoff_max_s: float, env: dict[str, str]) -> StepResult:
    """Send one request with retries; the result carries status, a body excerpt and the attempt count."""
    # Imported here: every run loads this module (recovery checks name its probes), few send a request.
    import httpx
    from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    headers = dict(probe.headers)
    for header, variable in probe.headers_env.items():
        if variable in env:
            headers[header] = env[variable]
    tries = 0

    def once() -> httpx.Response:
        nonlocal tries
        tries += 1
        with httpx.Client(timeout=probe.timeout_s, follow_redirects=False, trust_env=False) as client:
            response = client.request(
                probe.method,
                probe.url,
                headers=headers,
                json=probe.json_body if probe.body is None else None,
                content=probe.body,
            )
        if response.status_code >= 500 or response.status_code == 429:
            raise _RetryableStatus(response)
        return response

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=backoff_s, max=backoff_max_s),
        retry=retry_if_exception(_retryable),
        reraise=False,
    )
    where = f"{probe.method} {redact(probe.url)}"
    try:
        response = retrying(once)
    except RetryError as exc:
        last = exc.last_attempt.exception()
        if isinstance(last, _RetryableStatus):
            response = last.response
        else:
            reason = f"{last.__class__.__name__}: {last}" if last else "unknown error"
            return StepResult(
                ok=False,
                timed_out=isinstance(last, httpx.TimeoutException),
                detail=f"{where} failed after {tries} attempt(s): {reason}",
                data={"url": probe.url, "attempts": tries, "error": reason},
            ).redacted()
    return _judge(probe, response, tries, where)


def _judge(probe: Probe, response: httpx.Response, tries: int, where: str) -> StepResult:
    body = response.text[:2000]
    status_ok = response.status_code in probe.expect_status
    body_ok = probe.expect_body_contains is None or probe.expect_body_contains in response.text
    ok = status_ok and body_ok
    why = "" if ok else (" (unexpected status)" if not status_ok else f" (body lacks {probe.expect_body_contains!r})")
    return StepResult(
        ok=ok,
        changed=ok and probe.method != "GET" and probe.method != "HEAD",
        detail=f"{where} → {response.status_code}{why} after {tries} attempt(s)",
        data={"url": probe.url, "status": response.status_code, "body": body, "attempts": tries},
    ).redacted()


class HttpRequest(ActionAdapter[HttpParams]):
    name = "http"
    params_model = HttpParams
    risk = RiskLevel.MEDIUM
    undoable = True  # when the step names an undo request
    summary = "send an HTTP request with retries and backoff; verify by status and body"

    def describe(self, params: HttpParams) -> str:
        return f"{params.method} {redact(params.url)}"

    def _env(self, options: RunOptions) -> dict[str, str]:
        return dict(options.env or os.environ)

    def execute(self, params: HttpParams, options: RunOptions) -> StepResult:
        return send(
            params,
            attempts=params.retries + 1,
            backoff_s=params.backoff_s,
            backoff_max_s=params.backoff_max_s,
            env=self._env(options),
        )

    def verify(self, params: HttpParams, result: StepResult, options: RunOptions) -> Check:
        if not result.ok:
            return Check(ok=False, detail=result.detail)
        if params.verify is None:
            return Check(ok=True, detail=result.detail)
        # The probe gets its own, patient retry loop: a restarted service answers 503 for a while.
        probe = params.verify.model_copy(
            update={"expect_status": params.verify.expect_status} if params.verify.expect_status else {}
        )
        check = _poll(probe, attempts=params.verify_attempts, backoff_s=params.backoff_s, env=self._env(options))
        return Check(ok=check.ok, detail=f"probe {check.detail}", data=check.data)

    def undo(self, params: HttpParams, result: StepResult, options: RunOptions) -> StepResult | None:
        if params.undo is None:
            return None
        return send(
            params.undo,
            attempts=params.retries + 1,
            backoff_s=params.backoff_s,
            backoff_max_s=params.backoff_max_s,
            env=self._env(options),
        )


def _poll(probe: Probe, *, attempts: int, backoff_s: float, env: dict[str, str]) -> StepResult:
    """Ask until the answer is what the probe expects (any status, not only 5xx, is retried)."""
    result = StepResult(ok=False, detail="not probed")
    for attempt in range(attempts):
        result = send(probe, attempts=1, backoff_s=0, backoff_max_s=0, env=env)
        if result.ok:
            return result
        if attempt + 1 < attempts:
            time.sleep(min(backoff_s * (2**attempt), 8.0))
    return result
