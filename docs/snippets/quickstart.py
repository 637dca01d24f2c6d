from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, send_file


async def manual() -> FileResponse:
    # Shown in the browser; caches may keep it for an hour.
    return send_file("manual.pdf", max_age=3600)


async def manual_download() -> FileResponse:
    # Saved by the browser, under a name of our choosing.
    return send_file("manual.pdf", as_attachment=True, download_name="Manual 2025.pdf")


app = Lilya(
    routes=[
        Path("/manual", manual),
        Path("/manual/download", manual_download),
    ]
)
