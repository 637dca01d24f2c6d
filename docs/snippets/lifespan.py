from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lilya.apps import Lilya

from sendfs import registry

started: list[str] = []


@asynccontextmanager
async def lifespan(app: Lilya) -> AsyncIterator[None]:
    started.append("database pool")  # your own startup work
    async with registry.lifespan(app):  # closes storage sessions when the app stops
        yield
    started.remove("database pool")  # your own shutdown work


app = Lilya(routes=[], lifespan=lifespan)
