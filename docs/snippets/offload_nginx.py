import os

from lilya.apps import Lilya
from lilya.routing import Include, Path

from sendfs import (
    FileResponse,
    StorageFiles,
    XAccelRedirect,
    registry,
    send_file,
    send_from_storage,
)

FILES_DIR = os.environ.get("FILES_DIR", "/srv/files")
MEDIA_DIR = os.environ.get("MEDIA_DIR", "/srv/media")
REPORTS_URL = os.environ.get("REPORTS_URL", "s3://acme-reports")

# nginx serves FILES_DIR at its internal location /_files/, and MEDIA_DIR at /_media/.
FILES = XAccelRedirect("/_files/", root=FILES_DIR)
registry.mount("media", MEDIA_DIR, offload=XAccelRedirect("/_media/"))
# Objects: nginx fetches a presigned URL (valid for 60 s) at its internal /_reproxy.
OBJECTS = XAccelRedirect(remote="/_reproxy")


async def manual() -> FileResponse:
    return send_file(os.path.join(FILES_DIR, "manual.pdf"), offload=FILES, max_age=3600)


async def download(name: str) -> FileResponse:
    # A name from the URL, kept inside FILES_DIR by the app; the root fills in the offload's.
    offload = XAccelRedirect("/_files/")
    return send_from_storage(FILES_DIR, name, offload=offload, as_attachment=True)


async def avatar(user_id: int) -> FileResponse:
    # The mount's offload applies: X-Accel-Redirect: /_media/avatars/<id>.png
    return send_file(f"media://avatars/{user_id}.png", max_age=86400)


async def report(key: str) -> FileResponse:
    return send_from_storage(REPORTS_URL, key, offload=OBJECTS, as_attachment=True)


app = Lilya(
    routes=[
        Path("/manual", manual),
        Path("/downloads/{name:path}", download),
        Path("/avatars/{user_id:int}", avatar),
        Path("/reports/{key:path}", report),
        # Every file under FILES_DIR at /files/..., sent by nginx.
        Include("/files", app=StorageFiles(FILES_DIR, offload=XAccelRedirect("/_files/"))),
    ],
    lifespan=registry.lifespan,
)
