"""One sequence being generated: tokens to text, cut at stop strings, with its finish reason.

The one home of the sequence type: the llama.cpp runtime (one streamed sequence) and
parallel sampling (N sequences in one batch) both end a sequence through it, and neither
imports the other for it.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from typing import Protocol

from dca.runtime.generation import Completion, GenerationConfig


class TokenSource(Protocol):
    """What a sequence needs of the model: a token's bytes and whether it ends the turn."""

    def token_bytes(self, token: int) -> bytes: ...

    def is_end_of_generation(self, token: int) -> bool: ...


class StopScanner:
    """Cuts streamed text at the first stop string, holding back what could start one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.text = ""
        self.emitted = 0
        self.stopped = False

    def feed(self, piece: str) -> str:
        self.text += piece
        for stop in self.stops:
            at = self.text.find(stop, max(0, self.emitted - len(stop)))
            if at >= 0:
                self.text = self.text[:at]
                self.stopped = True
                return self.flush()
        safe = len(self.text) - self.hold
        if safe <= self.emitted:
            return ""
        out, self.emitted = self.text[self.emitted : safe], safe
        return out

    def flush(self) -> str:
        out, self.emitted = self.text[self.emitted :], len(self.text)
        return out


class TokenSequence:
    """One sequence being generated: tokens to text, cut at stop strings, with its finish reason.

    Shared by single-sequence streaming and parallel sampling, so both end a sequence alike.
    """

    def __init__(self, source: TokenSource, config: GenerationConfig, completion: Completion, max_tokens: int) -> None:
        self.source = source
        self.config = config
        self.completion = completion
        self.max_tokens = max_tokens
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.scanner = StopScanner(config.stop)
        completion.finish_reason = "length"

    def accept(self, token: int) -> tuple[str, bool]:
        """Take one generated token: (text now safe to show, whether the sequence has finished)."""
        completion = self.completion
        if self.source.is_end_of_generation(token) and not self.config.ignore_eos:
            completion.finish_reason = "stop"
            return "", True
        completion.tokens.append(token)
        piece = self.scanner.feed(self.decoder.decode(self.source.token_bytes(token)))
        if self.scanner.stopped:
            completion.finish_reason = "stop"
            return piece, True
        return piece, len(completion.tokens) >= self.max_tokens

    def flush(self) -> str:
        """The text held back until the end (an incomplete character, a possible stop prefix)."""
        rest = ""
        if not self.scanner.stopped:
            rest = self.scanner.feed(self.decoder.decode(b"", final=True))
            if not self.scanner.stopped:
                rest += self.scanner.flush()
        self.record()
        return rest

    def record(self) -> None:
        """Copy the text and token count into the completion (also after an interruption)."""
        self.completion.text = self.scanner.text
        self.completion.completion_tokens = len(self.completion.tokens)
