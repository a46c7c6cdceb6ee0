"""The app factory ``liaison serve`` hands uvicorn.

With ``--workers N`` uvicorn runs the app in N processes it starts with multiprocessing's
``spawn``; each one calls this factory, which first ties the worker's life to the server's
(see ``liaison.children``): a server killed with SIGKILL leaves no worker behind serving on
its port. With one worker the app runs in the server's own process and nothing is tied.
"""

from __future__ import annotations

import multiprocessing

from fastapi import FastAPI

from liaison.children import end_with_parent


def app() -> FastAPI:
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        end_with_parent(parent.pid)
    from liaison.taxii.app import app_from_env

    return app_from_env()
