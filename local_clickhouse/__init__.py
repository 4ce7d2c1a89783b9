"""The embedded ClickHouse: the chDB engine served over ClickHouse's HTTP interface."""

from .errors import ClickHouseError
from .serve import serve

__all__ = ["ClickHouseError", "serve"]
