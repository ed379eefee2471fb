"""Run the sandbox alone so a human can point a bot or curl at it: python -m bot.sandbox."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from bot.sandbox.server import TelegramSandbox


async def _serve(port: int, token: str) -> None:
    async with TelegramSandbox(token=token, port=port) as sandbox:
        # Printing is this command's whole interface.
        print(f"Telegram sandbox at {sandbox.base_url} (token {token})", flush=True)  # noqa: T201
        print(  # noqa: T201
            f'Play a user: curl -d \'{{"chat_id": 1, "text": "/start"}}\' '
            f"-H 'Content-Type: application/json' {sandbox.base_url}/sandbox/send_text",
            flush=True,
        )
        await asyncio.Event().wait()


def main() -> None:
    """Parse the port and token, then serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--token", default="123:ABC", help="the only token the sandbox accepts")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.token))


if __name__ == "__main__":
    main()
