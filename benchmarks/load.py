"""A small HTTP/1.1 load generator, used for the small-file rate when ``wrk`` is missing.

``python -m benchmarks.load URL CONNECTIONS SECONDS`` keeps CONNECTIONS keep-alive connections
busy with sequential GETs for SECONDS and prints ``{"requests": n, "seconds": s}``. It reads
responses framed by Content-Length only, which is what the benchmark apps send.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def _worker(host: str, port: int, path: str, deadline: float) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    done = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            done += 1
    finally:
        writer.close()
    return done


async def run(url: str, connections: int, seconds: float) -> tuple[int, float]:
    parts = urlsplit(url)
    started = time.perf_counter()
    deadline = started + seconds
    counts = await asyncio.gather(
        *(
            _worker(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/", deadline)
            for _ in range(connections)
        )
    )
    return sum(counts), time.perf_counter() - started


def main() -> None:
    requests, seconds = asyncio.run(run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
    print(json.dumps({"requests": requests, "seconds": seconds}))


if __name__ == "__main__":
    main()
