import os

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, send_from_storage

ISO_DIR = os.environ.get("ISO_DIR", "/srv/isos")
MiB = 1024 * 1024


async def image(name: str) -> FileResponse:
    # Full downloads under granian go to the server (http.response.pathsend): zero copy.
    # Ranges, and every download under uvicorn or hypercorn, stream in 1 MiB reads.
    return send_from_storage(ISO_DIR, name, as_attachment=True, chunk_size=MiB)


app = Lilya(routes=[Path("/isos/{name}", image, methods=["GET", "HEAD"])])
