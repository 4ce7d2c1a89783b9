"""The dbt side: runs the dbt project ``wiki_dbt/`` (silver and gold) against the
pipeline's ClickHouse, and shows its face: silver's and gold's ``status`` lines and
freshness, the dbt marker and its health verdict, its ``health`` commands."""
