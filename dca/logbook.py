"""The question log: every `dca ask` and chat turn, in SQLite under DCA_HOME (``logs.sqlite``).

One row per answer: when, the conversation it belongs to, question, answer, reasoning (when
there is some), sources, model, adapter, index, strategy, tokens and seconds. Writes are one
transaction each (WAL), so a crash loses at most the turn being written. ``--no-log`` on ask
and chat, or ``DCA_NO_LOG=1``, turns it off. The log holds the user's questions and their
documents' text: it stays in DCA_HOME, and `dca logs --clear` deletes it.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.config import Paths
from dca.errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    conversation TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    reasoning TEXT,
    sources TEXT NOT NULL,
    model TEXT,
    adapter TEXT,
    index_name TEXT,
    strategy TEXT,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    seconds REAL
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns(conversation, id);
"""


def logging_enabled(no_log: bool) -> bool:
    """False under ``--no-log``, ``DCA_NO_LOG=1``, ``DCA_LOG=0`` or ``log = false`` in settings.toml."""
    from dca.settings import load_settings

    return not no_log and bool(load_settings()["log"])


def new_conversation() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, kw_only=True)
class Turn:
    id: int
    created: float
    conversation: str
    question: str
    answer: str
    reasoning: str | None
    sources: list[dict[str, Any]]
    model: str | None
    adapter: str | None
    index: str | None
    strategy: str | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.created))}


class LogBook:
    """The question log of one DCA_HOME."""

    def __init__(self, paths: Paths) -> None:
        self.path: Path = paths.home / "logs.sqlite"

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), isolation_level=None, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"the question log {self.path} is damaged ({exc}); delete it (`dca logs --clear`)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot open the question log {self.path} ({exc})") from None
        return db

    def record(self, answer: Any, *, conversation: str) -> int:
        """Add one answered turn (an ``Answer``); returns its id."""
        reasoning = answer.reasoning
        row = (
            time.time(),
            conversation,
            answer.question,
            answer.text,
            reasoning.reasoning if reasoning else None,
            json.dumps(
                [{"number": s.number, "path": s.path, "heading": s.heading, "page": s.page} for s in answer.sources]
            ),
            answer.model,
            answer.adapter,
            answer.index,
            reasoning.strategy if reasoning else "direct",
            answer.prompt_tokens,
            answer.completion_tokens,
            float(answer.timings.get("total_s", 0.0)),
        )
        db = self._connect()
        try:
            cursor = db.execute(
                "INSERT INTO turns (created, conversation, question, answer, reasoning, sources, model, adapter, "
                "index_name, strategy, prompt_tokens, completion_tokens, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid or 0)
        finally:
            db.close()

    def recent(self, n: int = 10, *, conversation: str | None = None) -> list[Turn]:
        """The last ``n`` turns (of one conversation), oldest first."""
        if not self.path.is_file():
            return []
        db = self._connect()
        try:
            where, args = ("WHERE conversation = ?", [conversation]) if conversation else ("", [])
            rows = db.execute(f"SELECT * FROM turns {where} ORDER BY id DESC LIMIT ?", [*args, n]).fetchall()
        finally:
            db.close()
        return [
            Turn(
                id=r[0],
                created=r[1],
                conversation=r[2],
                question=r[3],
                answer=r[4],
                reasoning=r[5],
                sources=json.loads(r[6]),
                model=r[7],
                adapter=r[8],
                index=r[9],
                strategy=r[10],
                prompt_tokens=r[11] or 0,
                completion_tokens=r[12] or 0,
                seconds=r[13] or 0.0,
            )
            for r in reversed(rows)
        ]

    def last_conversation(self) -> str | None:
        turns = self.recent(1)
        return turns[0].conversation if turns else None

    def clear(self) -> int:
        """Delete the log; returns how many turns it held."""
        count = len(self.recent(1_000_000)) if self.path.is_file() else 0
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
        return count
