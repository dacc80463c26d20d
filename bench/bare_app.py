"""The baseline of rest_bench.py: sipline's HTTP stack (uvicorn + starlette, uvloop, httptools,
the same server options) serving a constant JSON body and nothing else."""

from __future__ import annotations

import sys

import uvicorn
import uvloop
from starlette.requests import Request
from starlette.responses import Response

from sipline.rest.envelope import HEADERS, JSON_TYPE

BODY = b'{"result":{"ok":true},"time":{"start":0.0,"finish":0.0,"duration":0.0}}'


async def app(scope, receive, send) -> None:
    request = Request(scope, receive)
    await request.body()
    await Response(BODY, headers=HEADERS, media_type=JSON_TYPE)(scope, receive, send)


def main(port: int) -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", access_log=False,
                            log_level="warning", server_header=False)
    uvloop.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main(int(sys.argv[1]))
