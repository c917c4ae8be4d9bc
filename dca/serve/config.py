"""``ServeConfig``: where ``dca serve`` listens, who may call it, and the limits on each request."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dca.errors import ServeError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Does binding ``host`` keep the server on this machine?

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def host_name(value: str) -> str:
    """The name in a Host header or an Origin, without scheme and port.

    >>> host_name("localhost:8000"), host_name("[::1]:8000"), host_name("http://127.0.0.1:3000"), host_name("evil.test")
    ('localhost', '::1', '127.0.0.1', 'evil.test')
    """
    rest = value.split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):
        return rest[1 : rest.find("]")] if "]" in rest else rest[1:]
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """How the server runs; ``dca serve`` flags map one-to-one."""

    host: str = "127.0.0.1"  # address to bind; anything but loopback needs an API key
    port: int = 8000
    api_key: str | None = None  # when set, every /v1 request must send "Authorization: Bearer KEY"
    models: tuple[str, ...] = ()  # generators kept loaded (catalog names or GGUF paths); () = the default
    index: str | None = None  # knowledge index for requests that name none (None: closed-book)
    n_ctx: int = 4096  # context window of each model
    max_queue: int = 8  # requests waiting per model behind the one being answered; more get 429
    max_body_bytes: int = 1_000_000  # larger request bodies get 413
    max_messages: int = 256  # most messages in one chat request
    max_tokens: int = 4096  # most answer tokens (and thinking budget) one request may ask for
    max_choices: int = 8  # most choices (n) and reasoning samples one request may ask for
    max_embedding_inputs: int = 256  # most texts in one embeddings request
    timeout_s: float = 600.0  # a request still running after this is cancelled (504)
    header_timeout_s: float = 10.0  # a connection must send a request's whole headers within this, or is closed
    max_waiting: int = 32  # connections still sending headers at once; a new one closes the oldest
    max_requests: int = 128  # requests in progress at once (streams included); more get 503 at once

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.api_key:
            raise ServeError(
                f"--host {self.host} lets other machines call this server; give it an --api-key "
                "(or DCA_API_KEY), or bind 127.0.0.1"
            )
        if self.api_key is not None and len(self.api_key) < 8:
            raise ServeError("the API key is shorter than 8 characters; use a long random one")
        if not 0 <= self.port <= 65535:
            raise ServeError(f"--port must be between 0 and 65535, got {self.port}")
        for name, value in (
            ("max_body_bytes", self.max_body_bytes),
            ("max_messages", self.max_messages),
            ("max_tokens", self.max_tokens),
            ("max_choices", self.max_choices),
            ("max_embedding_inputs", self.max_embedding_inputs),
        ):
            if value < 1:
                raise ServeError(f"{name} must be at least 1, got {value}")
        if self.max_queue < 0:
            raise ServeError(f"--max-queue must be 0 or more, got {self.max_queue}")
        if not self.timeout_s > 0:
            raise ServeError(f"--timeout must be positive, got {self.timeout_s}")
        if not self.header_timeout_s > 0:
            raise ServeError(f"header_timeout_s must be positive, got {self.header_timeout_s}")
        if self.max_waiting < 1 or self.max_requests < 1:
            raise ServeError(
                f"max_waiting and max_requests must be at least 1, got {self.max_waiting} and {self.max_requests}"
            )
