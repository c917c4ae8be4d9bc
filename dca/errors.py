"""Errors written for the user: what went wrong and what to do about it.

Library code raises these; only ``dca.cli`` turns them into one line on stderr and
exit code 1. Anything that is not a ``DcaError`` is a bug and keeps its traceback.
"""

from __future__ import annotations


class DcaError(Exception):
    """Base class of every error a user can act on."""


class ConfigError(DcaError):
    """A configuration value or path is invalid."""


class CatalogError(DcaError):
    """The model catalog is malformed or names an unknown model."""


class PullError(DcaError):
    """A model could not be downloaded, assembled or verified."""


class GGUFError(DcaError):
    """A file is not a readable GGUF model."""


class ModelNotFoundError(DcaError):
    """A model is in the catalog but not present on disk."""


class KnowledgeIndexError(DcaError):
    """A knowledge index is missing, malformed, locked or incompatible."""


class IndexNotFoundError(KnowledgeIndexError):
    """No knowledge index has that name."""


class IngestError(DcaError):
    """Documents could not be added to an index."""


class SkipFile(DcaError):
    """A file that cannot be indexed; the reason is counted and reported, never silent."""


class GeneratorError(DcaError):
    """The model could not be loaded or run."""


class SandboxError(DcaError):
    """The program sandbox could not start (not a failure of the program itself)."""


class ReasoningError(DcaError):
    """A reasoning run was configured wrongly or cannot continue."""


class EvalError(DcaError):
    """An evaluation run cannot start or continue."""


class DatasetError(DcaError):
    """A dataset file is missing or not in the expected format."""


class ReportError(DcaError):
    """A run folder cannot be read."""


class TrainError(DcaError):
    """Training data, a training run or an export cannot go on."""


def require_utf8(text: str, what: str) -> str:
    """``text`` unchanged when it is valid Unicode text; else a ConfigError naming ``what``
    (a command-line argument in another encoding arrives with undecodable bytes escaped); a
    value that is not a str at all (an app passing a number or None) is a ConfigError too."""
    if not isinstance(text, str):
        raise ConfigError(f"the {what} must be text (a str), not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(
            f"the {what} is not valid UTF-8 text; check the terminal's encoding (e.g. LANG=C.UTF-8) and retype it"
        ) from None
    return text


class ServeError(DcaError):
    """The server cannot start with these settings."""


class RequestError(DcaError):
    """An HTTP request to ``dca serve`` is malformed or cannot be served (answered in the OpenAI error shape)."""

    def __init__(
        self, message: str, *, status: int = 400, kind: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status code
        self.kind = kind  # OpenAI's error "type"
        self.param = param  # the request field at fault, if one is
