import os

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, send_file, send_from_storage

ISO_DIR = os.environ.get("ISO_DIR", "/srv/isos")
CURRENT = "disk.iso"
MiB = 1024 * 1024


async def image(name: str) -> FileResponse:
    # A name from the URL: send_from_storage keeps it inside ISO_DIR. It streams in 1 MiB
    # reads under every server: handing granian the path would let a rename made between
    # two opens lead the name out of ISO_DIR.
    return send_from_storage(ISO_DIR, name, as_attachment=True, chunk_size=MiB)


async def current() -> FileResponse:
    # A path the app chose itself: under granian a full download goes to the server
    # (http.response.pathsend), zero copy. Ranges and other servers stream.
    return send_file(os.path.join(ISO_DIR, CURRENT), as_attachment=True, chunk_size=MiB)


app = Lilya(
    routes=[
        Path("/isos/current", current, methods=["GET", "HEAD"]),
        Path("/isos/{name}", image, methods=["GET", "HEAD"]),
    ]
)
