"""One contract over every face: Lilya, Starlette/FastAPI, Flask, Django, Litestar."""
