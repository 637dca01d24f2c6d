import fsspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route

from sendfs import StorageFiles, registry
from sendfs.starlette import FileResponse, send_file, send_from_storage

# demo data: the in-memory files served below, so the example runs as is.
# A real app serves what its storage already holds: drop these lines.
memory = fsspec.filesystem("memory")
memory.pipe_file("/exports/orders.csv", b"id,total\n1,9.50\n")
memory.pipe_file("/public/logo.svg", b"<svg/>")


async def manual(request: Request) -> FileResponse:
    return send_file("docs/manual.pdf")


async def export(request: Request) -> FileResponse:
    name = request.path_params["name"]  # user input: send_from_storage confines it
    return send_from_storage("memory://exports", name, as_attachment=True)


app = Starlette(
    routes=[
        Route("/manual", manual, methods=["GET", "HEAD"]),
        Route("/exports/{name}", export, methods=["GET", "HEAD"]),
        Mount("/public", app=StorageFiles("memory://public", max_age=300)),
    ],
    lifespan=registry.lifespan,
)
