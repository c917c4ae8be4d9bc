"""Showing a reasoning run in the terminal: thinking (shown dimmed, hidden or summarized),
live progress (tokens against the budget, samples, votes, searches), and Ctrl-C to pause
and add a note (a second Ctrl-C cancels)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

import typer

from dca.choices import THINKING_MODES
from dca.cli.common import plain
from dca.reasoning.events import (
    AnswerText,
    ContextAdded,
    Finished,
    ProgramRan,
    Progress,
    SampleFinished,
    SearchIssued,
    SearchResults,
    Thinking,
    VoteTally,
    describe,
    tally_text,
)

_DIM, _RESET = "\x1b[2m", "\x1b[0m"


class Display:
    """Turns events into terminal output; ``mode`` is show, hide or summary."""

    def __init__(self, mode: str, *, stream_answer: bool = True) -> None:
        if mode not in THINKING_MODES:
            raise typer.BadParameter(f"--thinking must be one of {', '.join(THINKING_MODES)}, got {mode!r}")
        self.mode = mode
        self.stream_answer = stream_answer
        self.tty = sys.stdout.isatty()
        self.status_tty = sys.stderr.isatty()
        self.in_thinking = False
        self.answer_started = False
        self.status = ""
        self.searches = 0
        self.tally = ""

    def _out(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    def _dim(self, text: str) -> str:
        return f"{_DIM}{plain(text)}{_RESET}" if self.tty else plain(text)

    def _status(self, text: str) -> None:
        """A live line on stderr (hide/summary: the thinking is not printed, so progress is)."""
        self.status = text
        if self.mode != "show" and self.status_tty:
            sys.stderr.write("\r\x1b[K" + text)
            sys.stderr.flush()

    def clear_status(self) -> None:
        if self.mode != "show" and self.status_tty and self.status:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
        self.status = ""

    def __call__(self, event: Any) -> None:
        if isinstance(event, Thinking):
            if self.mode == "show":
                if not self.in_thinking:
                    self._out(self._dim(f"\n[thinking{'' if event.sample == 0 else f', sample {event.sample + 1}'}]\n"))
                    self.in_thinking = True
                self._out(self._dim(event.text))
        elif isinstance(event, Progress):
            self._status(
                f"thinking {event.thought_tokens}/{event.budget} tokens"
                + (f" · sample {event.sample + 1}/{event.n_samples}" if event.n_samples > 1 else "")
                + (f" · searches {event.searches}" if event.searches else "")
                + (f" · votes {self.tally}" if self.tally else "")
            )
        elif isinstance(event, SampleFinished | VoteTally | SearchIssued | SearchResults | ProgramRan | ContextAdded):
            if isinstance(event, SampleFinished):
                self.in_thinking = False
            elif isinstance(event, SearchIssued):
                self.searches += 1
            elif isinstance(event, VoteTally):
                self.tally = tally_text(event)
            if (note := describe(event)) is not None:
                self._note(note)
        elif isinstance(event, AnswerText):
            if not self.answer_started:
                self.clear_status()
                self.answer_started = True
                if self.mode == "show" and self.in_thinking:
                    self._out("\n")
                self.in_thinking = False
            if self.stream_answer:
                self._out(plain(event.text))

    def _note(self, text: str) -> None:
        if self.mode == "show":
            self._out(self._dim(f"\n[{text}]\n"))
            self.in_thinking = False
        else:
            self._status(text)

    def finish(self, answer: Any) -> None:
        """After the run: end the streamed answer's line, then the accounting (show, summary)
        and the last lines of the thinking (summary)."""
        self.clear_status()
        if self.answer_started and self.stream_answer:
            self._out("\n")
            self.answer_started = False
        r = answer.reasoning
        if r is None:
            return
        if self.mode == "hide":
            return
        head = f"thought {r.reasoning_tokens} tokens over {len(r.samples)} sample(s), budget {r.budget} per sample"
        head += f", answered in {r.answer_tokens} tokens" if r.answer_tokens else ""
        head += f", confidence {r.confidence:.0%}" if len(r.samples) > 1 else ""
        head += ", budget reached: answer forced" if r.forced else ""
        head += f", {len(r.searches)} searches" if r.searches else ""
        head += ", answered by plain RAG (fallback)" if r.fallback else ""
        typer.echo(self._dim(f"[{head}]"), err=True)
        if self.mode == "summary":
            lines = [line.strip() for line in r.reasoning.splitlines() if line.strip()]
            for line in lines[-3:]:
                typer.echo(self._dim(f"  {line[:160]}"), err=True)


def consume(run: Any, display: Callable[[Any], None], *, pause: bool) -> Any:
    """Drive ``run`` to its answer, showing each event. Ctrl-C: with ``pause``, ask for a note
    and resume (a second Ctrl-C cancels); without, cancel. Returns the Answer (None if cancelled)."""
    interrupted: list[bool] = []
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(_signum: int, _frame: Any) -> None:
        interrupted.append(True)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        for event in run:
            if isinstance(event, Finished):
                return event.result
            display(event)
            if interrupted:
                interrupted.clear()
                if not pause:
                    run.cancel()
                    raise KeyboardInterrupt
                # The second Ctrl-C raises here even when this process inherited SIGINT ignored
                # (started from a shell's background job or a parent that ignores it).
                signal.signal(signal.SIGINT, signal.default_int_handler)
                try:
                    sys.stderr.write("\n(paused) add a note and press Enter to resume; Ctrl-C cancels\n")
                    note = input("note> ").strip()
                except (KeyboardInterrupt, EOFError):
                    run.cancel()
                    return None
                finally:
                    signal.signal(signal.SIGINT, on_sigint)
                if note:
                    run.add_context(note)
        return None
    finally:
        signal.signal(signal.SIGINT, previous)
