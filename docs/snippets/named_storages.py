import os

from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, registry, send_file, send_from_storage

# Once, at startup: "media://a/b" now means "<MEDIA_URL>/a/b". The URL and its options
# (endpoint, credentials) live here and never appear in request paths.
registry.mount("media", os.environ.get("MEDIA_URL", "s3://acme-media/uploads"))


async def avatar(user_id: int) -> FileResponse:
    # The app builds this path itself from an int: send_file is fine.
    return send_file(f"media://avatars/{user_id}.png", max_age=86400)


async def attachment(name: str) -> FileResponse:
    # The user chooses this name: send_from_storage keeps it inside the mount.
    return send_from_storage("media", f"attachments/{name}", as_attachment=True)


app = Lilya(
    routes=[
        Path("/avatars/{user_id:int}", avatar),
        Path("/attachments/{name:path}", attachment),
    ],
    lifespan=registry.lifespan,
)
