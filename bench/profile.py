"""Where the time goes: a benchmark run under py-spy, its samples folded into top frames.

py-spy samples the benchmark process and its Python children (the MCP servers written in
Python; the npm servers run on node and are invisible to it, their cost shows as CPU
seconds in the benchmark's own figures). Idle frames are not sampled, so a share is of
time spent on CPU (or in a blocking call), per process. A profiled run is slower than a
plain one; its figures are written as `<name>.profiled.json` and are not the benchmark's.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.report import RESULTS_DIR

SAMPLE_RATE_HZ = 100  # enough for frames above 1 %, light enough not to swamp 2 cores
TOP = 15
_PROCESS = re.compile(r'^process (\d+):"(.*)"$', re.DOTALL)
_LINE = re.compile(r":\d+\)$")
_SITE = re.compile(r"^.*?/site-packages/")
#: Leaf frames that mean "waiting", which py-spy cannot always tell from running in this VM.
IDLE_LEAVES = (
    "EpollSelector.select ",
    "_PollLikeSelector.select ",
    "Condition.wait ",
    "Thread._wait_for_tstate_lock ",
    "ThreadedChildWatcher._do_waitpid ",
    "Queue.get ",
    "Event.wait ",
)
#: Waits inside C (a SimpleQueue or a lock), seen as a Python frame at one line: found by
#: reading the installed source, so a new aiosqlite release cannot turn idle into "busy".
IDLE_CALLS = (
    ("aiosqlite.core", "_connection_worker_thread", "tx.get()"),
    ("concurrent.futures.thread", "_worker", "work_queue.get(block=True)"),
)
IMPORTING = "_find_and_load ("
OURS = ("core/", "integrations/", "bot/")
#: Own time by library: the leaf-most frame that names one of these decides (first match).
LIBRARIES = (
    ("logging", ("(logging/", "(core/logging.py")),
    ("pydantic", ("(pydantic/", "(pydantic_core/")),
    ("json", ("(json/",)),
    ("sqlite (aiosqlite thread)", ("(aiosqlite/",)),
    ("pipes and subprocesses", ("(asyncio/unix_events.py", "(subprocess.py")),
    ("asyncio streams", ("(asyncio/streams.py",)),
    ("anyio", ("(anyio/",)),
    ("MCP SDK", ("(mcp/", "(mcp_types/")),
    ("tenacity", ("(tenacity/",)),
    ("aiogram", ("(aiogram/",)),
    ("aiohttp", ("(aiohttp/", "(yarl/", "(multidict/")),
    ("psutil (the benchmark's own sampling)", ("(psutil/",)),
    ("gitpython", ("(git/", "(gitdb/")),
    ("our code", tuple(f"({prefix}" for prefix in OURS)),
    ("the benchmark itself (set-up, clean-up)", ("(bench/", "(tempfile.py", "(shutil.py")),
    ("event loop", ("(asyncio/", "(selectors.py")),
)


@dataclass
class ProcessProfile:
    """Folded samples of one process: frames by own time and by time including callees."""

    label: str
    samples: int = 0  # busy samples outside imports: the base of every share below
    idle: int = 0
    importing: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    ours: Counter[str] = field(default_factory=Counter)
    libraries: Counter[str] = field(default_factory=Counter)

    def top(self, counter: Counter[str], n: int = TOP) -> list[tuple[str, float]]:
        base = self.samples or 1
        return [(frame, round(100 * c / base, 1)) for frame, c in counter.most_common(n)]

    def add(self, frames: list[str], count: int) -> None:
        """One folded stack: idle, importing, or busy (counted by frame)."""
        if frames[-1].startswith(IDLE_LEAVES) or _idle_line(frames[-1]):
            self.idle += count
            return
        if any(IMPORTING in f for f in frames):
            self.importing += count
            return
        self.samples += count
        self.own[_frame(frames[-1])] += count
        self.libraries[_library([_frame(f) for f in reversed(frames)])] += count
        names = {_frame(f) for f in frames}
        for name in names:
            self.inclusive[name] += count
            if name.endswith(".py)") and name.split("(", 1)[-1].startswith(OURS):
                self.ours[name] += count


def _spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


def _label(command: str) -> str:
    """A short name for a sampled process: the server it runs, or 'bench' for ours."""
    for marker, name in (
        ("mcp-server-git", "git (mcp-server-git)"),
        ("radicale", "calendar (radicale)"),
        ("integrations.servers.semantic_memory", "hpkv-memory (semantic_memory)"),
        ("integrations.servers.", None),
        ("fixture_server", "echo-floor"),
        ("-m bench", "bench (bot process)"),
    ):
        if marker in command:
            return name or command.split(marker, 1)[1].split()[0]
    return " ".join(command.split())[:60] or "bench (bot process)"


@functools.cache
def _idle_lines() -> frozenset[tuple[str, str, int]]:
    """(function, file suffix, line) of each wait in IDLE_CALLS, as installed here."""
    found: set[tuple[str, str, int]] = set()
    for module_name, function, needle in IDLE_CALLS:
        with contextlib.suppress(ImportError, OSError, AttributeError):
            module = importlib.import_module(module_name)
            lines, first = inspect.getsourcelines(getattr(module, function))
            suffix = module_name.replace(".", "/") + ".py"
            found |= {(function, suffix, first + i) for i, ln in enumerate(lines) if needle in ln}
    return frozenset(found)


def _idle_line(raw_leaf: str) -> bool:
    return any(
        raw_leaf.startswith(f"{function} (") and raw_leaf.endswith(f"{suffix}:{line})")
        for function, suffix, line in _idle_lines()
    )


def _library(leaf_first: list[str]) -> str:
    for frame in leaf_first:
        for name, markers in LIBRARIES:
            if any(m in frame for m in markers):
                return name
    return "other"


def _frame(raw: str) -> str:
    short = _SITE.sub("", _LINE.sub(")", raw))
    return short.replace(str(Path.cwd()) + "/", "")


def _records(raw_file: Path) -> Iterator[tuple[str, int]]:
    """(stack, count) pairs; a stack may span lines when a command line held newlines."""
    pending: list[str] = []
    for line in raw_file.read_text(encoding="utf-8", errors="replace").splitlines():
        pending.append(line)
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            pending[-1] = stack
            yield "\n".join(pending), int(count_text)
            pending = []


def fold(raw_file: Path) -> dict[str, ProcessProfile]:
    """py-spy's raw (collapsed) output grouped by process."""
    profiles: dict[str, ProcessProfile] = {}
    for stack, count in _records(raw_file):
        frames = stack.split(";")
        label = "unknown process"
        while frames and (match := _PROCESS.match(frames[0])):
            label = _label(match.group(2))
            frames = frames[1:]
        if not frames:
            continue
        profiles.setdefault(label, ProcessProfile(label)).add(frames, count)
    return profiles


def summarise(name: str, raw_file: Path) -> dict[str, object]:
    profiles = sorted(fold(raw_file).values(), key=lambda p: -p.samples)
    profiles = [p for p in profiles if p.samples]
    total = sum(p.samples for p in profiles) or 1
    out: dict[str, object] = {}
    print(f"\n== profile of bench {name} ({total} samples at {SAMPLE_RATE_HZ} Hz) ==")
    for prof in profiles:
        share = round(100 * prof.samples / total, 1)
        print(
            f"\n-- {prof.label}: {prof.samples} busy samples ({share} % of all busy), "
            f"{prof.importing} importing, {prof.idle} waiting --"
        )
        for title, counter, n in (
            ("own time by library (leaf-most frame that names one)", prof.libraries, TOP),
            ("own time (leaf frame; C calls such as sqlite3 count to their caller)", prof.own, TOP),
            ("our code, including callees", prof.ours, TOP),
            ("any code, including callees", prof.inclusive, TOP + 10),
        ):
            print(f"  {title}:")
            for frame, pct in prof.top(counter, n):
                print(f"    {pct:5.1f} %  {frame}")
        out[prof.label] = {
            "busy_samples": prof.samples,
            "importing_samples": prof.importing,
            "idle_samples": prof.idle,
            "share_pct": share,
            "libraries": prof.top(prof.libraries, 20),
            "own": prof.top(prof.own, 40),
            "ours": prof.top(prof.ours, 40),
            "inclusive": prof.top(prof.inclusive, 60),
        }
    return out


def profile_many(names: list[str], *, quick: bool, rounds: int | None) -> int:
    """Run each benchmark under py-spy and print and save its folded profile."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    worst = 0
    for name in names:
        raw = RESULTS_DIR / f"{name}.pyspy.txt"
        bench = [sys.executable, "-m", "bench", name, "--tag", "profiled"]
        if rounds is not None:
            bench += ["--rounds", str(rounds)]
        if quick:
            bench.append("--quick")
        spy = [_spy(), "record", "-r", str(SAMPLE_RATE_HZ), "-s", "-f", "raw", "-o", str(raw)]
        code = subprocess.run([*spy, "--", *bench], check=False, timeout=3600).returncode
        worst = max(worst, code)
        if raw.exists():
            folded = summarise(name, raw)
            path = RESULTS_DIR / f"{name}.profile.json"
            path.write_text(json.dumps(folded, indent=2) + "\n", encoding="utf-8")
            print(f"wrote {path}")
    return worst
