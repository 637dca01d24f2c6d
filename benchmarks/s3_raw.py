"""The raw baseline: aiobotocore ``get_object`` + ``Body.iter_chunks(1 MiB)``, in its own process.

``python -m benchmarks.s3_raw BUCKET KEY`` (endpoint and credentials from ``AWS_*``) prints
``{"seconds": ..., "bytes": ...}``: the time from the ``get_object`` call to the last byte, the
client already created (as in a server that has warmed up).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from aiobotocore.session import AioSession

CHUNK = 1024 * 1024


async def read_object(bucket: str, key: str) -> tuple[float, int]:
    session = AioSession()
    async with session.create_client("s3") as client:
        started = time.perf_counter()
        response = await client.get_object(Bucket=bucket, Key=key)
        received = 0
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                received += len(chunk)
        return time.perf_counter() - started, received


def main() -> None:
    seconds, received = asyncio.run(read_object(sys.argv[1], sys.argv[2]))
    print(json.dumps({"seconds": seconds, "bytes": received}))


if __name__ == "__main__":
    main()
