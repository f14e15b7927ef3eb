"""One error type that the CLI and the UI know how to show: a cause and a fix."""


class AndiniError(Exception):
    """An error a person can act on. `hint` says what to do about it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  fix: {self.hint}" if self.hint else text


class InputError(AndiniError):
    """Bad input data: names the file, the line (1-based) and the field when known."""

    def __init__(self, message: str, *, path=None, line: int | None = None,
                 field: str | None = None, hint: str | None = None):
        where = ":".join(str(p) for p in (path, line) if p is not None)
        prefix = f"{where}: " if where else ""
        suffix = f" (field '{field}')" if field else ""
        super().__init__(f"{prefix}{message}{suffix}", hint)
        self.path, self.line, self.field = path, line, field
