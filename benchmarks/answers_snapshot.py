"""Answers before and after a change that must not move them: records, then checks, byte for byte.

    python benchmarks/answers_snapshot.py record benchmarks/data/answers_before.json
    python benchmarks/answers_snapshot.py check benchmarks/data/answers_before.json
    (about 30 minutes each on 2 cores; run it alone; an interrupted record resumes by set)

Three sets, each through the product's own front door:
- 20 SQuAD 2.0 questions (the first 20 of ../shared/data/squad2_dev, file order) asked with
  `dca ask --json` and default settings over an index of their article's paragraphs;
- 20 GSM8K questions (the first 20 of test_dev.jsonl) asked with `dca ask --json --think
  --no-retrieval`;
- 10 requests to a real `dca serve` (plain and streamed, over the index and closed-book,
  with and without reasoning_effort).
Kept per answer: its text, the sources shown (path and range), the citations, whether it is
grounded, its finish reason and its token count. Timings are not kept.

Greedy llama.cpp output is the same run to run on one machine and build; another CPU may
differ, so the snapshot records the CPU and a check on another one says so instead of
comparing. To record the "before" on a new machine, record from a git worktree of the commit
before the change (`git worktree add /tmp/before COMMIT`, then run this script there with the
same models).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dca.files import atomic_write_json
from dca.machine import cpu

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"  # --data changes it (a worktree elsewhere)
N_SQUAD, N_GSM8K = 20, 20


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "DCA_HOME": str(home), "DCA_NO_LOG": "1", "HF_HUB_OFFLINE": "1", "DCA_STORE": ""}


def _home(tmp: Path) -> Path:
    """A DCA_HOME sharing the checkout's pulled models."""
    home = tmp / "home"
    (home / "models").mkdir(parents=True)
    for entry in (ROOT / "models").iterdir():
        (home / "models" / entry.name).symlink_to(entry)
    return home


def _kept(answer: dict[str, Any]) -> dict[str, Any]:
    """What must not move: the answer, its sources and citations, not its timings."""

    def where(source: dict[str, Any]) -> list[Any]:
        return [Path(source["path"]).name, source["char_start"], source["char_end"]]

    return {
        "answer": answer["answer"],
        "grounded": answer["grounded"],
        "citations": [where(s) for s in answer["citations"]],
        "sources": [where(s) for s in answer["sources"]],
        "finish_reason": answer["finish_reason"],
        "completion_tokens": answer["usage"]["completion_tokens"],
    }


def _ask(home: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "dca", "ask", "--json", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"dca ask {' '.join(args)} failed: {result.stderr.strip()}")
    return _kept(json.loads(result.stdout))


def _article() -> dict[str, Any]:
    """The first article of the SQuAD 2.0 file."""
    return json.loads((DATA / "squad2_dev" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"][0]


def _index_squad(home: Path, tmp: Path) -> None:
    """Index "squad": the first article's paragraphs, one file each."""
    article = _article()
    corpus = tmp / "squad"
    corpus.mkdir()
    for n, paragraph in enumerate(article["paragraphs"]):
        (corpus / f"p{n:03d}.md").write_text(paragraph["context"] + "\n", encoding="utf-8")
    added = subprocess.run(
        [sys.executable, "-m", "dca", "index", "add", str(corpus), "-i", "squad"],
        env=_env(home),
        capture_output=True,
        text=True,
        check=False,
    )
    if added.returncode != 0:
        raise SystemExit(f"indexing the SQuAD article failed: {added.stderr.strip()}")


def _squad(home: Path) -> list[dict[str, Any]]:
    questions = [q["question"] for p in _article()["paragraphs"] for q in p["qas"]][:N_SQUAD]
    rows = []
    for n, question in enumerate(questions, start=1):
        rows.append({"question": question, **_ask(home, "-i", "squad", question)})
        print(f"squad {n}/{len(questions)}", file=sys.stderr)
    return rows


def _gsm8k(home: Path) -> list[dict[str, Any]]:
    lines = (DATA / "gsm8k" / "test_dev.jsonl").read_text(encoding="utf-8").splitlines()[:N_GSM8K]
    rows = []
    for n, line in enumerate(lines, start=1):
        question = json.loads(line)["question"]
        rows.append({"question": question, **_ask(home, "--think", "--no-retrieval", question)})
        print(f"gsm8k {n}/{len(lines)}", file=sys.stderr)
    return rows


SERVE_REQUESTS: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "Where is Normandy?"}], "dca": {"index": "squad"}},
    {"messages": [{"role": "user", "content": "Who were the Normans?"}], "dca": {"index": "squad"}, "stream": True},
    {"messages": [{"role": "user", "content": "When did Rollo sign a treaty?"}], "dca": {"index": "squad", "k": 2}},
    {
        "messages": [
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What language did the Normans speak?"},
        ],
        "dca": {"index": "squad"},
    },
    {"messages": [{"role": "user", "content": "Name a Norman conquest."}], "dca": {"index": "squad", "k": 1}},
    {"messages": [{"role": "user", "content": "What is 17 times 23?"}], "reasoning_effort": "low"},
    {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 32},
    {
        "messages": [{"role": "user", "content": "A shop sells 3 pens for 2 dollars. How much do 12 pens cost?"}],
        "reasoning_effort": "low",
        "stream": True,
    },
    {"messages": [{"role": "user", "content": "Say hello in French."}], "stream": True, "max_tokens": 24},
    {"messages": [{"role": "user", "content": "What did the Normans build?"}], "dca": {"index": "squad", "k": 5}},
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(home: Path, tmp: Path) -> list[dict[str, Any]]:
    import httpx

    port = _free_port()
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "dca", "serve", "--port", str(port)], env=_env(home), stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit(f"dca serve did not start: {(tmp / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        model = httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["id"]
        rows = []
        for n, request in enumerate(SERVE_REQUESTS, start=1):
            rows.append({"request": request, **_request(url, {"model": model, **request})})
            print(f"serve {n}/{len(SERVE_REQUESTS)}", file=sys.stderr)
        return rows
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _request(url: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    if not body.get("stream"):
        response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=900)
        reply = response.json()
        if "choices" not in reply:  # an error is an answer too: it must not move either
            return {"status": response.status_code, "error": reply.get("error")}
        choice = reply["choices"][0]
        extra = choice.get("dca") or reply.get("dca") or {}
        return {"content": choice["message"]["content"], "finish_reason": choice["finish_reason"], "dca": _dca(extra)}
    content, finish, extra = "", None, {}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=900) as reply:
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                content += choice.get("delta", {}).get("content") or ""
                finish = choice.get("finish_reason") or finish
                extra = choice.get("dca") or extra
    return {"content": content, "finish_reason": finish, "dca": _dca(extra)}


def _dca(extra: dict[str, Any]) -> dict[str, Any]:
    """dca's extras without timings: citations, sources and the grounded verdict."""
    return {key: extra.get(key) for key in ("citations", "grounded", "sources") if key in extra}


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A served answer's row with each source as (file name, range, text): the temporary
    folder the index was made in differs from run to run, and so may a score's last digit."""
    extra = row.get("dca")
    if not isinstance(extra, dict) or not isinstance(extra.get("sources"), list):
        return row
    sources = [[Path(s["path"]).name, s["char_start"], s["char_end"], s.get("text")] for s in extra["sources"]]
    return {**row, "dca": {**extra, "sources": sources}}


def snapshot(keep: Path | None = None) -> dict[str, Any]:
    """The three sets' answers; with ``keep``, each set is written there as soon as it is done,
    and a set already there (from an interrupted run on this CPU) is not asked again."""
    done: dict[str, Any] = {"cpu": cpu()}
    if keep is not None and keep.is_file():
        kept = json.loads(keep.read_text(encoding="utf-8"))
        if kept.get("cpu") == done["cpu"]:
            done.update({k: v for k, v in kept.items() if k in ("squad", "gsm8k", "serve")})
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        home = _home(tmp)
        _index_squad(home, tmp)
        for name, make in (
            ("squad", lambda: _squad(home)),
            ("gsm8k", lambda: _gsm8k(home)),
            ("serve", lambda: _serve(home, tmp)),
        ):
            if name not in done:
                done[name] = make()
                if keep is not None:
                    atomic_write_json(keep, done)
    return done


def main() -> None:
    global DATA
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("record", "check"))
    parser.add_argument("file", type=Path)
    parser.add_argument("--data", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    args = parser.parse_args()
    DATA = args.data or DATA
    if args.action == "check":
        before = json.loads(args.file.read_text(encoding="utf-8"))
        if before["cpu"] != cpu():
            raise SystemExit(
                f"the snapshot was recorded on {before['cpu']}, this is {cpu()}: record the before on this machine "
                "from a worktree of the commit before the change (see this script's docstring)"
            )
    began = time.time()
    now = snapshot(args.file if args.action == "record" else None)
    if args.action == "record":
        atomic_write_json(args.file, now)
        print(f"recorded {sum(len(now[k]) for k in ('squad', 'gsm8k', 'serve'))} answers in {args.file}")
        return
    moved = [
        (kind, n, old, new)
        for kind in ("squad", "gsm8k", "serve")
        for n, (old, new) in enumerate(zip(before[kind], now[kind], strict=True))
        if _comparable(old) != _comparable(new)
    ]
    for kind, n, old, new in moved:
        print(f"MOVED {kind} #{n + 1}:\n  before: {json.dumps(old)[:400]}\n  after:  {json.dumps(new)[:400]}")
    total = sum(len(now[k]) for k in ("squad", "gsm8k", "serve"))
    print(f"{total - len(moved)} of {total} answers identical ({time.time() - began:.0f} s)")
    raise SystemExit(1 if moved else 0)


if __name__ == "__main__":
    main()
