"""wiki-events: Wikimedia recentchange → RabbitMQ → ClickHouse → dbt → Dash."""

from wiki_core import __version__

__all__ = ["__version__"]
