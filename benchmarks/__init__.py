"""The sendfs benchmark suite: ``nox -s bench`` (or ``python -m benchmarks.run``).

Real servers on 127.0.0.1 (uvicorn, granian, nginx, a moto S3 server), real clients (curl, wrk,
a raw aiobotocore reader), contenders alternated round by round, medians and ratios reported.
See ``benchmarks/run.py`` for the options and ``docs/benchmarks.md`` for the last full run.
"""
