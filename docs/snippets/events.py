import logging
from collections import Counter

import fsspec
from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import DownloadEvent, registry, send_file

audit = logging.getLogger("downloads")
bytes_by_source: Counter[str] = Counter()


def meter(event: DownloadEvent) -> None:
    # Runs after the response is over: keep it quick (count, log, put on a queue).
    bytes_by_source[event.source] += event.bytes_sent
    audit.info(
        "%s %s %s bytes=%d ranges=%s aborted=%s in %.3fs",
        event.method,
        event.source,
        event.status,
        event.bytes_sent,
        event.ranges,
        event.aborted,
        event.duration,
    )


registry.on_complete = meter  # every response served through the default registry

# demo data: the in-memory report served below, so the example runs as is.
# A real app serves what its storage already holds: drop this line.
fsspec.filesystem("memory").pipe_file("/reports/q3.csv", b"region,total\nnorth,12\n")


async def report(name: str) -> object:
    return send_file(f"memory://reports/{name}", as_attachment=True)


app = Lilya(routes=[Path("/reports/{name}", report)], lifespan=registry.lifespan)
