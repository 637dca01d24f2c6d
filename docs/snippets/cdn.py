import os

from lilya.apps import Lilya
from lilya.routing import Include

from sendfs import StorageFiles

ASSETS_DIR = os.environ.get("ASSETS_DIR", "/srv/assets")
DOWNLOADS_DIR = os.environ.get("DOWNLOADS_DIR", "/srv/downloads")

app = Lilya(
    routes=[
        # Names carry a hash of the content (app.3f9c2e.js): a new build means new URLs,
        # so caches may keep each answer for a year.
        Include("/assets", app=StorageFiles(ASSETS_DIR, precompressed=True, max_age=31_536_000)),
        # The same URLs with new content now and then: caches reuse an answer for 5 minutes,
        # then revalidate it (If-None-Match, answered 304 while the file is unchanged).
        Include("/downloads", app=StorageFiles(DOWNLOADS_DIR, max_age=300)),
    ]
)
