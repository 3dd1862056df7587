"""The HTTP API (contract section 3)."""

from connectors.api._app import create_api
from connectors.api._context import Backend

__all__ = ["Backend", "create_api"]
