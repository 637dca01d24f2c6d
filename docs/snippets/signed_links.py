import os

from lilya.apps import Lilya
from lilya.responses import JSONResponse
from lilya.routing import Include, Path

from sendfs import FileResponse, LinkSigner, StorageFiles, send_from_storage

REPORTS_DIR = os.environ.get("REPORTS_DIR", "/srv/reports")
INVOICES_DIR = os.environ.get("INVOICES_DIR", "/srv/invoices")
# Comma separated, newest first: the first signs, every one is accepted.
signer = LinkSigner(os.environ["SENDFS_LINK_SECRETS"].split(","))


async def share(name: str) -> JSONResponse:
    # After your own permission check: the link works for an hour, for whoever holds it.
    return JSONResponse({"url": signer.sign(f"/reports/{name}", expires_in=3600)})


async def invoice(number: int) -> FileResponse:
    return send_from_storage(INVOICES_DIR, f"{number}.pdf", signer=signer, as_attachment=True)


app = Lilya(
    routes=[
        Path("/share/{name}", share),
        Path("/invoices/{number:int}", invoice),
        # Every file under REPORTS_DIR, to signed links only: anything else is a 403.
        Include("/reports", app=StorageFiles(REPORTS_DIR, signer=signer)),
    ]
)
