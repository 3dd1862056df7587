"""The HTTP API (contract section 3)."""

from connectors.api._app import Backend, create_api

__all__ = ["Backend", "create_api"]
