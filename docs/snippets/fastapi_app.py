from fastapi import FastAPI
from starlette.requests import Request

from sendfs import FileResponse, StorageFiles, registry, send_file, send_from_storage

app = FastAPI(lifespan=registry.lifespan)  # closes storage sessions at shutdown


# Plain Starlette endpoints: FastAPI path operations (@app.get) JSON-encode any return value
# that is not a Starlette Response, and sendfs's FileResponse is an ASGI response of its own.
async def manual(request: Request) -> FileResponse:
    return send_file("docs/manual.pdf")


async def export(request: Request) -> FileResponse:
    name = request.path_params["name"]  # user input: send_from_storage confines it
    return send_from_storage("memory://exports", name, as_attachment=True)


app.add_route("/manual", manual, methods=["GET", "HEAD"])
app.add_route("/exports/{name}", export, methods=["GET", "HEAD"])
# A whole storage under /public.
app.mount("/public", StorageFiles("memory://public", max_age=300))
