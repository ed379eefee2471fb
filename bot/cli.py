"""`taskbot` command line: run, demo, chat, config check, health, stats, backup, restore."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError, TaskbotError, ToolFailed
from core.logging import setup_logging
from core.settings import AppConfig, RuntimeEnv, load_config

if TYPE_CHECKING:
    from integrations.backup import BackupIntegration

log = logging.getLogger("taskbot.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="taskbot", description=__doc__)
    p.add_argument("--config", help="config JSON (default: $TASKBOT_CONFIG or the shipped one)")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (polling); needs BOT_TOKEN")
    run.add_argument("--metrics-port", type=int, default=8080, help="0 picks a free port")
    demo = sub.add_parser("demo", help="local sandbox + bot + servers, a short conversation")
    demo.add_argument(
        "--data-dir", default="data/demo", help="made by the demo, wiped by the next (no other)"
    )
    demo.add_argument("--all", action="store_true", help="enable every server in the config")
    chat = sub.add_parser("chat", help="talk to the bot from this terminal (local sandbox)")
    chat.add_argument("--data-dir", default="data/chat", help="kept between sessions")
    chat.add_argument("--all", action="store_true", help="enable every server in the config")
    chat.add_argument("--lang", default="en", choices=["en", "ru"], help="your Telegram language")
    cfg = sub.add_parser("config", help="configuration tools")
    cfg.add_argument("action", choices=["check"])
    health = sub.add_parser(
        "health", help="print every server's health (a running bot's, or start them once)"
    )
    health.add_argument("--data-dir", help="default: $TASKBOT_DATA_DIR or ./data")
    stats = sub.add_parser("stats", help="print task and outbox counts of the data directory")
    stats.add_argument("--data-dir", help="default: $TASKBOT_DATA_DIR or ./data")
    # Exit codes of backup and restore: 0 done, 1 the backup is unusable (nothing was
    # replaced), 2 configuration or server trouble, 3 a running bot holds the data directory.
    backup = sub.add_parser("backup", help="back up the data directory now (no bot running)")
    backup.add_argument("--data-dir", help="default: $TASKBOT_DATA_DIR or ./data")
    restore = sub.add_parser("restore", help="verify a backup, then put it in place")
    restore.add_argument("backup", help="a backup id or the path of a .tar.gz archive")
    restore.add_argument("--data-dir", help="default: $TASKBOT_DATA_DIR or ./data")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        env = RuntimeEnv.from_environ()
        if args.command == "config":
            return _config_check(config)
        if args.command == "run":
            return asyncio.run(_run(config, env, args.metrics_port))
        if args.command == "chat":
            from bot.chat import run_chat

            return asyncio.run(
                run_chat(config, Path(args.data_dir), enable_all=args.all, lang=args.lang)
            )
        if args.command == "demo":
            from bot.demo import run_demo

            return asyncio.run(run_demo(config, Path(args.data_dir), enable_all=args.all))
        data_dir = Path(getattr(args, "data_dir", None) or env.data_dir)
        if args.command == "health":
            if not data_dir.is_dir():  # a typo would start servers on a new, empty store
                print(
                    f"taskbot: no data directory {data_dir} (set TASKBOT_DATA_DIR or --data-dir)",
                    file=sys.stderr,
                )
                return 2
            return asyncio.run(_health(config, data_dir))
        if args.command == "stats":
            return asyncio.run(_stats(data_dir))
        if args.command in ("backup", "restore"):
            restoring = args.backup if args.command == "restore" else None
            return asyncio.run(_backup_or_restore(config, data_dir, restoring))
    except TaskbotError as exc:
        print(f"taskbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _config_check(config: AppConfig) -> int:
    enabled = config.enabled_servers()
    print(f"config OK: {len(config.servers)} servers, {len(enabled)} enabled")
    for name, cfg in config.servers.items():
        if cfg.required and not cfg.enabled:
            print(f"  warning: {name} is required but disabled: tasks will not reach it")
    if not enabled:
        print("  warning: no server is enabled: tasks stay in the local store only")
    for name, cfg in sorted(config.servers.items(), key=lambda kv: kv[1].priority):
        flag = "enabled " if cfg.enabled else "disabled"
        req = " required" if cfg.required else ""
        print(f"  {flag} p{cfg.priority} {name:<20} timeout {cfg.timeout:g}s{req}")
    return 0


async def _run(config: AppConfig, env: RuntimeEnv, metrics_port: int) -> int:
    from bot.runtime import Runtime

    if not env.bot_token:
        print("taskbot: BOT_TOKEN is not set (or use `taskbot demo`)", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", env.bot_token):
        print("taskbot: BOT_TOKEN does not look like a bot token", file=sys.stderr)
        return 2
    setup_logging(env.data_dir / "logs")
    runtime = Runtime(config=config, env=env, metrics_port=metrics_port)
    runtime.install_signals()
    await runtime.serve()
    return 0


async def _health(config: AppConfig, data_dir: Path) -> int:
    """A running bot's last health check; with no bot running, start the servers and probe.

    Exit code 0 unless the overall status is ERROR (1); 2 for no snapshot from a running bot.
    """
    from bot.datadir import DataDirBusy, DataDirLock
    from bot.handlers.admin import health_rows
    from core.monitoring import SNAPSHOT_NAME
    from core.orchestrator import EnterpriseTaskOrchestrator

    try:
        with DataDirLock(data_dir):
            # Nobody else runs here: our own servers on this data directory are safe to start.
            setup_logging(data_dir / "logs", console=False)
            async with EnterpriseTaskOrchestrator(config=config, data_dir=data_dir) as orch:
                await orch.check_health()
                health = orch.get_health_status()
    except DataDirBusy as busy:
        # A second set of servers on the bot's state would fight it: read its snapshot.
        snapshot = data_dir / "logs" / SNAPSHOT_NAME
        if not snapshot.exists():
            print(f"taskbot: {busy}; it has written no health snapshot yet", file=sys.stderr)
            return 2
        health = json.loads(snapshot.read_text(encoding="utf-8"))["health"]
        age = time.time() - snapshot.stat().st_mtime
        print(f"running bot (pid {busy.holder or '?'}), last health check {age:.0f} s ago")
    print(render_table(health_rows(health)))
    return 0 if health["overall"] != "ERROR" else 1


async def _stats(data_dir: Path) -> int:
    from core.models import TaskStatus
    from core.store import SqliteTaskStore

    path = data_dir / "taskbot.db"
    if not path.exists():
        print(f"taskbot: no taskbot data in {data_dir} (no taskbot.db)", file=sys.stderr)
        return 2
    async with SqliteTaskStore(path) as store:
        counts = {s.value: await store.count_tasks(status=s) for s in TaskStatus}
        print(json.dumps({"tasks": counts, "outbox_pending": await store.outbox_depth()}))
    return 0


async def _backup_or_restore(config: AppConfig, data_dir: Path, restoring: str | None) -> int:
    """`taskbot backup` and `taskbot restore`, with the data directory held against a bot."""
    from bot.datadir import DataDirBusy, DataDirLock
    from core.settings import ServerConfig
    from integrations.backup import BackupError, BackupIntegration

    setup_logging(data_dir / "logs", console=False)
    server = config.servers.get("backup") or ServerConfig()
    try:
        with DataDirLock(data_dir):
            async with BackupIntegration(server, data_dir) as backups:
                if restoring is None:
                    return await _backup_now(backups)
                return await _restore(backups, restoring)
    except DataDirBusy as exc:
        print(f"taskbot: {exc}", file=sys.stderr)
        if restoring is None:
            print(
                "  (a running bot backs itself up: send /backup in its admin chat)", file=sys.stderr
            )
        return 3
    except BackupError as exc:
        print(f"taskbot: {exc.args[0]}; nothing was restored", file=sys.stderr)
        return 1


async def _backup_now(backups: BackupIntegration) -> int:
    info = await backups.create("cli")
    check = await backups.verify(info.backup_id)
    if not check.ok:
        print(f"taskbot: backup {info.backup_id} failed verification:", file=sys.stderr)
        for problem in check.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"backup {info.backup_id}: {info.size} bytes, verified")
    print(f"  components: {', '.join(info.components)}")
    print(f"  file: {info.path}")
    return 0


async def _restore(backups: BackupIntegration, wanted: str) -> int:
    adopted = False
    if wanted.endswith(".tar.gz") or "/" in wanted:  # ids have neither: this names a file
        backup_id, adopted = await backups.import_archive(Path(wanted))
    else:
        backup_id = wanted
    try:
        check = await backups.verify(backup_id)
    except ToolFailed:
        print(f"taskbot: no backup {wanted!r} in {backups.home}", file=sys.stderr)
        return 1
    if not check.ok:
        if adopted:
            await backups.delete(backup_id)  # do not keep a damaged archive in the catalogue
        print(
            f"taskbot: backup {backup_id} failed verification; nothing was restored:",
            file=sys.stderr,
        )
        for problem in check.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    # The state being replaced is kept first: a restore of the wrong backup can be undone.
    kept = await backups.create("pre-restore")
    if not (await backups.verify(kept.backup_id)).ok:
        print(
            "taskbot: the current state could not be backed up; nothing was restored",
            file=sys.stderr,
        )
        return 1
    restored = await backups.restore(backup_id)
    print(f"the state before this restore is backup {kept.backup_id} (restore it to undo)")
    print(f"restored backup {backup_id}:")
    for name, path in sorted(restored.items()):
        print(f"  {name} -> {path}")
    return 0


def render_table(rows: list[tuple[str, str, str, str]]) -> str:
    head = ("server", "status", "latency", "breaker")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


#: Left in every directory the demo makes: the only directories it will wipe again.
DEMO_MARK = ".taskbot-demo"


def reset_demo_dir(path: Path) -> None:
    """Empty a directory for a fresh demo; refuse one the demo did not make or a bot holds.

    The demo starts from nothing each time, but `--data-dir ./data` must never cost anyone
    their tasks: only an empty or missing directory, or one carrying the demo's mark, is
    wiped, and never while a bot (or a chat) runs on it.
    """
    from bot.datadir import DataDirLock

    if path.exists() and any(path.iterdir()):
        if not (path / DEMO_MARK).exists():
            raise ConfigError(
                f"{path} holds data the demo did not make; the demo only wipes its own "
                "directories: pick another --data-dir"
            )
        with DataDirLock(path):  # raises DataDirBusy while a bot runs there
            pass
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARK).write_text("made by `taskbot demo`; wiped by the next one\n")


def elapsed_ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000


if __name__ == "__main__":
    raise SystemExit(main())
