"""The Django contract app: sync views under WSGI, async views under ASGI (see ``urls``)."""
