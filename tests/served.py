"""A site's HTTP door served by a real uvicorn in a thread of the test process, on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import uvicorn

from twinpacs.app import Site
from twinpacs.web import create_app

HOST = "127.0.0.1"


class ServedApp:
    """Started on construction (port 0: the OS chooses); stop() is a clean stop or, with
    kill=True, one that drops open connections without answering."""

    def __init__(self, site: Site, port: int = 0, timeout: float = 10.0) -> None:
        config = uvicorn.Config(create_app(site), host=HOST, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:  # readiness, not a fixed wait
            assert self.thread.is_alive() and time.monotonic() < deadline, f"uvicorn could not serve on {HOST}:{port}"
            time.sleep(0.01)
        self.port = int(self.server.servers[0].sockets[0].getsockname()[1])
        self.url = f"http://{HOST}:{self.port}"

    def stop(self, kill: bool = False) -> None:
        self.server.force_exit = kill
        self.server.should_exit = True
        self.thread.join(10)
