import os

from lilya.apps import Lilya
from lilya.routing import Include, Path

from sendfs import FileResponse, StorageFiles, send_file

ASSETS_DIR = os.environ.get("ASSETS_DIR", "/srv/assets")


async def catalog() -> FileResponse:
    # catalog.json.br, else catalog.json.gz, else catalog.json, as the client accepts.
    return send_file(os.path.join(ASSETS_DIR, "catalog.json"), precompressed=True)


app = Lilya(
    routes=[
        Path("/catalog.json", catalog),
        # The same for every file: app.js.br or app.js.gz beside app.js.
        Include("/assets", app=StorageFiles(ASSETS_DIR, precompressed=True)),
    ]
)
