"""The loader: RabbitMQ → ClickHouse bronze (``consumer``), the bronze schema and writer
(``bronze``), and the hand-off that writes the reader's batches straight to bronze when
there is no broker (``direct``)."""
