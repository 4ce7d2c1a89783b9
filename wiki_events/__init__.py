"""wiki-events: Wikimedia recentchange → RabbitMQ → ClickHouse → dbt → Dash."""

__version__ = "0.1.0"
