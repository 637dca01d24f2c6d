import fsspec
from fastapi import FastAPI

from sendfs import StorageFiles, registry
from sendfs.starlette import FileResponse, send_file, send_from_storage

# demo data: the in-memory files served below, so the example runs as is.
# A real app serves what its storage already holds: drop these lines.
memory = fsspec.filesystem("memory")
memory.pipe_file("/exports/orders.csv", b"id,total\n1,9.50\n")
memory.pipe_file("/public/logo.svg", b"<svg/>")

app = FastAPI(lifespan=registry.lifespan)  # closes storage sessions at shutdown


@app.api_route("/manual", methods=["GET", "HEAD"])
async def manual() -> FileResponse:
    return send_file("docs/manual.pdf")


@app.api_route("/exports/{name}", methods=["GET", "HEAD"])
async def export(name: str) -> FileResponse:
    # name is user input: send_from_storage keeps it inside memory://exports.
    return send_from_storage("memory://exports", name, as_attachment=True)


app.mount("/public", StorageFiles("memory://public", max_age=300))
