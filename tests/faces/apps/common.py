"""What every contract app shares: its settings from the environment, and the memory files.

Each face's app module (``lilya_app``, ``fastapi_app``, ``flask_app``, ``django_app``,
``litestar_app``) serves the same routes from the same settings:

- ``SENDFS_FACES_ROOT``: a local directory with the test files;
- ``SENDFS_FACES_BUCKET``: the S3 bucket (endpoint and credentials from the ``AWS_*``
  variables);
- ``SENDFS_FACES_TOKEN``: what ``/ping`` answers, so a test knows the server is its own;
- ``SENDFS_FACES_AZURE`` and ``SENDFS_FACES_CONTAINER``: the Azurite connection string and
  the container behind ``/az/<name>`` (``az://<container>/<name>``, with :meth:`FacesEnv.az`).

Routes (GET and HEAD): ``/ping``, ``/local/<name>``, ``/files/<path>`` (confined to ROOT),
``/bytes/<name>`` (a ``BytesIO``), ``/memory/<name>``, ``/s3/<key>``, ``/az/<name>``,
``/attachment/<name>``
(download name :data:`ATTACHMENT_PREFIX` + name) and ``/missing`` (a 404).

The front-server offload, signed links and precompressed siblings (GET and HEAD), each from
the option :class:`FacesEnv` builds, so every face serves them alike:

- ``/offload/local/<path>``: ``send_from_storage(ROOT, path)`` with
  :meth:`FacesEnv.accel` (``XAccelRedirect(OFFLOAD_LOCATION)``, its root filled in by
  ``send_from_storage``);
- ``/offload/s3/<key>``: the S3 object with :meth:`FacesEnv.reproxy`
  (``XAccelRedirect(remote=REPROXY_LOCATION)``);
- ``/sendfile/<path>``: ``send_from_storage(ROOT, path)`` with :meth:`FacesEnv.sendfile`
  (``XSendfile(root=ROOT)``);
- ``/signed/<path>``: ``send_from_storage(ROOT, path)`` with :meth:`FacesEnv.signer`, a
  :class:`~sendfs.LinkSigner` of :data:`LINK_SECRET`;
- ``/precompressed/<path>``: ``send_from_storage(ROOT, path, precompressed=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import fsspec

from sendfs import LinkSigner, XAccelRedirect, XSendfile

__all__ = [
    "ATTACHMENT_PREFIX",
    "LINK_SECRET",
    "MEMORY_ROOT",
    "OFFLOAD_LOCATION",
    "REPROXY_LOCATION",
    "FacesEnv",
]

#: Where the app copies ROOT's files at startup.
MEMORY_ROOT = "memory://sendfs-faces"
#: The download name of ``/attachment/<name>`` starts with this (non-ASCII on purpose).
ATTACHMENT_PREFIX = "résumé "
#: The nginx ``internal`` location that maps ROOT, for ``/offload/local/<path>``.
OFFLOAD_LOCATION = "/_files/"
#: The nginx ``internal`` location that proxies ``X-Reproxy-URL``, for ``/offload/s3/<key>``.
REPROXY_LOCATION = "/_reproxy"
#: The secret of ``/signed/<path>``: the tests mint links with it (test data, not a secret).
LINK_SECRET = "sendfs-faces-contract-link-secret"


@dataclass(frozen=True)
class FacesEnv:
    """The settings of a contract app, and the bytes of its files (for ``/bytes``)."""

    root: str
    bucket: str
    token: str
    azure: str = ""
    container: str = ""
    blobs: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> FacesEnv:
        """Read the settings, load the files and copy them into the memory filesystem."""
        root = os.environ["SENDFS_FACES_ROOT"]
        blobs = {}
        memory = fsspec.filesystem("memory")
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            if os.path.isfile(path):
                with open(path, "rb") as file:
                    blobs[name] = file.read()
                memory.pipe_file(f"{MEMORY_ROOT}/{name}", blobs[name])
        return cls(
            root=root,
            bucket=os.environ.get("SENDFS_FACES_BUCKET", ""),
            token=os.environ.get("SENDFS_FACES_TOKEN", "ok"),
            azure=os.environ.get("SENDFS_FACES_AZURE", ""),
            container=os.environ.get("SENDFS_FACES_CONTAINER", ""),
            blobs=blobs,
        )

    def local(self, name: str) -> str:
        """The path of the test file ``name`` (the route guards the name itself)."""
        return os.path.join(self.root, os.path.basename(name))

    def az(self, name: str) -> tuple[str, dict[str, str]]:
        """The ``az://`` URL of blob ``name`` and the storage options that reach Azurite."""
        return f"az://{self.container}/{name}", {"connection_string": self.azure}

    def accel(self) -> XAccelRedirect:
        """The offload of ``/offload/local/<path>``: nginx, the root left to the face."""
        return XAccelRedirect(OFFLOAD_LOCATION)

    def reproxy(self) -> XAccelRedirect:
        """The offload of ``/offload/s3/<key>``: nginx proxies the presigned URL."""
        return XAccelRedirect(remote=REPROXY_LOCATION)

    def sendfile(self) -> XSendfile:
        """The offload of ``/sendfile/<path>``: Apache or lighttpd, for files under ROOT."""
        return XSendfile(root=self.root)

    def signer(self) -> LinkSigner:
        """The signer of ``/signed/<path>``."""
        return LinkSigner(LINK_SECRET)
