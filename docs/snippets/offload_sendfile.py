import os

from lilya.apps import Lilya
from lilya.routing import Include, Path

from sendfs import FileResponse, StorageFiles, XSendfile, send_file

FILES_DIR = os.environ.get("FILES_DIR", "/srv/files")
# Where the front server sees FILES_DIR: the same path on one machine; the volume's mount
# point when it runs in another container.
FRONT_FILES_DIR = os.environ.get("FRONT_FILES_DIR", FILES_DIR)

# X-Sendfile: <FRONT_FILES_DIR>/<path under FILES_DIR>, for Apache or lighttpd.
SENDFILE = XSendfile(root=FILES_DIR, location=FRONT_FILES_DIR)


async def manual() -> FileResponse:
    return send_file(os.path.join(FILES_DIR, "manual.pdf"), offload=SENDFILE)


app = Lilya(
    routes=[
        Path("/manual", manual),
        Include("/files", app=StorageFiles(FILES_DIR, offload=SENDFILE, as_attachment=True)),
    ]
)
