"""The ceiling: the fastest a FastAPI route can answer on this machine with Tether's server flags.

One GET route returning a small JSON object through a typed response model, no middleware, no
database. bench/run.py serves it with `uvicorn ceiling:app --loop uvloop --http httptools
--no-access-log --no-proxy-headers --workers N`, as `tether serve` serves Tether, and reports
every Tether figure as a ratio to it.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel


class Pong(BaseModel):
    status: str
    version: int


app = FastAPI(title="ceiling")


@app.get("/ping")
async def ping() -> Pong:
    return Pong(status="ok", version=1)
