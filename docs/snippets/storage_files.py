import os

from lilya.apps import Lilya
from lilya.routing import Include

from sendfs import StorageFiles, registry

PUBLIC_URL = os.environ.get("PUBLIC_URL", "s3://acme-public/site")

app = Lilya(
    routes=[
        # Every object under PUBLIC_URL at /files/...; directories get an HTML listing.
        Include("/files", app=StorageFiles(PUBLIC_URL, listing=True, max_age=300)),
        # A static site: /docs/ serves docs/index.html, /docs redirects to /docs/.
        Include("/docs", app=StorageFiles(f"{PUBLIC_URL}/docs", html=True)),
    ],
    lifespan=registry.lifespan,
)
