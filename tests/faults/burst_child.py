"""A bot-side process for the crash test: creates tasks and prints each acknowledgement.

Run as `python burst_child.py <data_dir> <count>`; prints `ACK <uid>` after each
`create_task` returned (the moment a user would have been told "saved"), then idles.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from core.orchestrator import EnterpriseTaskOrchestrator
from tests.faults.conftest import fault_config


async def main(data_dir: Path, count: int) -> None:
    orch = EnterpriseTaskOrchestrator(
        config=fault_config(("deltatask", "memory")), data_dir=data_dir
    )
    await orch.start()
    print("READY", flush=True)
    for i in range(count):
        task = await orch.create_task(f"crash burst {i}")
        print(f"ACK {task.uid}", flush=True)
        await asyncio.sleep(0)
    await asyncio.sleep(3600)  # the parent kills us long before this


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
