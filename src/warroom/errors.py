"""User-facing errors: each renders as one line that names what and where (CLI exits 2)."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from the user: a file, a field or a value that is not what was expected."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.one_line())

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled back from a worker process (a read that failed there): the same class with every
        # field (a LiveError's sources too), not only the message that Exception's pickling keeps.
        return (_rebuilt, (type(self), dict(vars(self))))

    def one_line(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
        if self.field:
            where = f"{where}: field '{self.field}'" if where else f"field '{self.field}'"
        text = f"{where}: {self.message}" if where else self.message
        return " ".join(text.split())


def _rebuilt(cls: type[InputError], fields: dict[str, object]) -> InputError:
    error = cls.__new__(cls)
    vars(error).update(fields)
    Exception.__init__(error, error.one_line())
    return error


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived. Raised through the run like Ctrl-C; `incident_id` is set once an
    incident was opened, so the caller can say how to resume it."""

    def __init__(self, signal_name: str = "SIGINT", incident_id: str | None = None) -> None:
        self.signal_name = signal_name
        self.incident_id = incident_id
        super().__init__(signal_name)


class BundleError(InputError):
    """The incident bundle on disk is malformed."""


class TelemetryError(InputError):
    """Telemetry that fails validation at the source boundary (any source: a bundle, a live query)."""


class WorkflowSpecError(InputError):
    """A workflow YAML does not validate."""


class NotFoundError(InputError):
    """A named thing (incident, workflow, action) does not exist."""


class StoreError(InputError):
    """The incident store cannot be opened or written: a bad URL, a corrupt or locked file, a missing directory."""
