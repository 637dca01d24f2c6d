"""The sendfs benchmark suite: ``nox -s bench`` (or ``python -m benchmarks.run``).

Real servers on 127.0.0.1 (uvicorn, granian, gunicorn, nginx, a moto S3 server) and real clients
(curl, wrk). Every target pairs sendfs with what a user would otherwise run on the same server,
in the same run: contenders alternated round by round, medians and per-round ratios reported,
the server's CPU beside its throughput. See ``benchmarks/run.py`` for the options and
``docs/benchmarks.md`` for the last full run.
"""
