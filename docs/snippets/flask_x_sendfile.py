import os

from flask import Flask
from werkzeug.wrappers import Response

from sendfs.flask import send_file

FILES_DIR = os.environ.get("FILES_DIR", "/srv/files")

app = Flask(__name__)
# As with Flask's own send_file: local files go out as X-Sendfile: <absolute path>.
app.config["USE_X_SENDFILE"] = True


@app.get("/manual")
def manual() -> Response:
    return send_file(os.path.join(FILES_DIR, "manual.pdf"), max_age=3600)
