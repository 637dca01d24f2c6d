from lilya.apps import Lilya
from lilya.routing import Path

from sendfs import FileResponse, registry, send_file


async def report(year: int) -> FileResponse:
    return send_file(f"s3://reports/{year}.pdf", as_attachment=True, max_age=3600)


async def logo() -> FileResponse:
    return send_file("static/logo.png")


app = Lilya(
    routes=[Path("/reports/{year:int}", report), Path("/logo", logo)],
    lifespan=registry.lifespan,  # closes S3 sessions at shutdown
)
