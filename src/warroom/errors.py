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


class BundleError(InputError):
    """The incident bundle on disk is malformed."""


class WorkflowSpecError(InputError):
    """A workflow YAML does not validate."""


class NotFoundError(InputError):
    """A named thing (incident, workflow, action) does not exist."""
