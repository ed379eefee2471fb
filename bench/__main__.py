"""`python -m bench [name ...] [--quick] [--rounds N] [--profile]`: run benchmarks, print, save.

With one name the benchmark runs in this process. With several (or none: all of them) each
runs in its own child interpreter, one after the other, so one's memory, threads and server
processes cannot colour the next one's figures, and a hung one is stopped at its time limit.
`--profile` runs the named benchmarks under py-spy (children included) and prints the
frames where the samples fell; see bench/profile.py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.report import RESULTS_DIR

BENCHES = ("creation", "bot_throughput", "scale", "recovery", "memory", "startup")
#: Wall-clock bound of one benchmark run as a child, full and --quick.
TIME_LIMIT_S = {False: 1800, True: 600}


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=", ".join(BENCHES))
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one round")
    parser.add_argument("--rounds", type=int, default=None, help="repeat each measurement")
    parser.add_argument("--profile", action="store_true", help="sample with py-spy")
    parser.add_argument(
        "--tag", default=None, help="write results/<name>.<tag>.json (--quick: 'quick')"
    )
    return parser.parse_args(argv)


def _run_here(name: str, quick: bool, rounds: int | None, tag: str | None) -> int:
    module = importlib.import_module(f"bench.{name}")
    if rounds is None:
        rounds = 1 if quick else int(module.ROUNDS)
    report = asyncio.run(module.run(quick=quick, rounds=rounds))
    report.print()
    # A quick run never overwrites the figures of a full one.
    path = report.write(tag=("quick" if quick else "") if tag is None else tag)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


def _run_child(name: str, args: argparse.Namespace) -> int:
    command = [sys.executable, "-m", "bench", name]
    if args.quick:
        command.append("--quick")
    if args.rounds is not None:
        command += ["--rounds", str(args.rounds)]
    limit = TIME_LIMIT_S[args.quick]
    began = time.monotonic()
    try:
        code = subprocess.run(command, timeout=limit, check=False).returncode
    except subprocess.TimeoutExpired:
        print(f"bench {name}: stopped after {limit} s")
        return 124
    print(f"bench {name}: exit {code} after {time.monotonic() - began:.0f} s")
    return code


def _summary(names: list[str], quick: bool) -> None:
    """Every figure that has a target, from the JSON files just written."""
    print("\n== summary: figures with a target ==")
    for name in names:
        path = RESULTS_DIR / f"{name}{'.quick' if quick else ''}.json"
        if not path.exists():
            print(f"{name}: no results")
            continue
        for fig in json.loads(path.read_text(encoding="utf-8"))["figures"]:
            if fig["target"] is None:
                continue
            sign = "<=" if fig["better"] == "lower" else ">="
            met = "yes" if fig["met"] else "NO"
            value = "-" if fig["value"] is None else f"{fig['value']:.4g}"
            print(
                f"  {name:15} {fig['name']:45} {value:>10} {fig['unit']:8} "
                f"{sign} {fig['target']:<8g} {met}"
            )


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    names = list(args.names) or list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHES)}")
        return 2
    if args.profile:
        from bench.profile import profile_many

        return profile_many(names, quick=args.quick, rounds=args.rounds)
    if len(names) == 1:
        return _run_here(names[0], args.quick, args.rounds, args.tag)
    codes = [_run_child(name, args) for name in names]
    _summary(names, args.quick)
    return max(codes)


if __name__ == "__main__":
    raise SystemExit(main())
