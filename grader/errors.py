"""Errors the grader reports to its caller rather than to a student."""


class InputError(Exception):
    """The submission or the command line cannot be used (exit 2, one clear line)."""


class RubricError(Exception):
    """A rubric file is malformed. The message names the file, the field and the reason."""

    def __init__(self, path: str, field: str, reason: str):
        self.path, self.field, self.reason = path, field, reason
        super().__init__(f"{path}: {field}: {reason}")
