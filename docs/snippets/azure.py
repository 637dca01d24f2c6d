import os

from lilya.apps import Lilya
from lilya.routing import Include, Path

from sendfs import StorageFiles, registry, send_file, send_from_storage

# One connection string (or account_name + account_key, or credential=...) for the mount;
# request paths never carry credentials.
registry.mount(
    "contracts", "az://contracts", connection_string=os.environ["AZURE_STORAGE_CONNECTION_STRING"]
)


async def contract(name: str) -> object:
    # name is user input: send_from_storage keeps it inside the container.
    return send_from_storage("contracts", name, as_attachment=True)


async def brochure() -> object:
    # A 307 to a read-only SAS URL valid for 5 minutes: Azure sends the bytes.
    return send_file("contracts://public/brochure.pdf", redirect=True, expires=300)


app = Lilya(
    routes=[
        Path("/contracts/{name:path}", contract),
        Path("/brochure", brochure),
        Include("/public", app=StorageFiles("contracts://public", max_age=3600)),
    ],
    lifespan=registry.lifespan,  # closes the Azure clients at shutdown
)
