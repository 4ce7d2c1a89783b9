{#-
  The one place that chooses table engines. On a ClickHouse cluster (the profile's
  `cluster`, from DBT_CLICKHOUSE_CLUSTER) every *MergeTree engine a model asks for
  becomes its Replicated* form (arguments kept: the server's default_replica_path and
  {shard}/{replica} macros name the replicas), and dbt-clickhouse adds ON CLUSTER to the
  DDL. Without a cluster the engine is exactly the model's. Overrides dbt-clickhouse's
  engine_clause(), which every table-building materialization calls.
-#}
{% macro engine_clause() %}
  engine = {{ wiki_engine(config.get('engine', default='MergeTree()'), target.cluster) }}
{%- endmacro -%}

{% macro wiki_engine(engine, cluster) -%}
  {%- if cluster and 'MergeTree' in engine and not engine.startswith('Replicated') -%}
    Replicated{{ engine }}
  {%- else -%}
    {{ engine }}
  {%- endif -%}
{%- endmacro %}
