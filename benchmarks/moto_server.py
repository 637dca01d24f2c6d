"""moto's ThreadedMotoServer on 127.0.0.1, in a process of its own, until SIGTERM or SIGINT.

``python -m benchmarks.moto_server PORT``. A process of its own keeps moto's request handling
(CPU-heavy: every GET copies the object) off the runner's GIL, and lets the runner stop it by PID.
"""

from __future__ import annotations

import signal
import sys
import threading

from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(sys.argv[1])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        stop.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
