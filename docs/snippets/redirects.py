from lilya.apps import Lilya
from lilya.routing import Include, Path

from sendfs import StorageFiles, registry, send_file

registry.mount("media", "s3://acme-media/uploads")


async def video(name: str) -> object:
    # 307 to a presigned S3 URL valid for 10 minutes: the bytes never pass through the app.
    # The URL makes S3 answer with our Content-Type and Content-Disposition.
    return send_file(f"media://videos/{name}", redirect=True, expires=600, as_attachment=True)


app = Lilya(
    routes=[
        Path("/videos/{name}", video),
        # Every file under the mount, redirected the same way; a missing one is still a 404.
        Include("/files", app=StorageFiles("media", redirect=True, expires=600)),
    ],
    lifespan=registry.lifespan,
)
