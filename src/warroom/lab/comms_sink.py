"""The shop's mail server on loopback (aiosmtpd): the stakeholder updates warroom sends by email
are kept as received, one .eml file each, so a run's updates can be counted and read afterwards."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_sequence = itertools.count(1)


class Mailbox:
    """aiosmtpd handler: every accepted message becomes <ms>-<n>.eml in the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        content = envelope.original_content or b""
        path = self.folder / f"{int(time.time() * 1000)}-{next(_sequence):05d}.eml"
        await asyncio.to_thread(path.write_bytes, content)
        return "250 Message accepted for delivery"


async def start_smtp(folder: Path, port: int) -> asyncio.Server:
    """Serve SMTP on 127.0.0.1:port in the running loop (close the returned server to stop)."""
    handler: Any = Mailbox(folder)
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTP(handler, hostname="mail.shop.example"), "127.0.0.1", port)


def received(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.eml"))
