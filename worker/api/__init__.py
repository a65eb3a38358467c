"""The REST API: reads from the database through a read-only connection, writes by asking the worker.

`create_app(config)` builds the FastAPI application; `komas api` serves it with uvicorn.
"""

from worker.api.app import create_app

__all__ = ["create_app"]
