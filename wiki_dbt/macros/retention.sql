{#- Retentions, in days counted from ingestion: var('bronze_retention_days') and
    var('silver_retention_days') (dbt_project.yml reads them from BRONZE_RETENTION_DAYS
    and SILVER_RETENTION_DAYS). Checked by the rules of wiki_core/config.py retentions():
    a bad value stops dbt with one line naming it. -#}

{% macro max_retention_days() -%}
    {#- ingested_at + the retention stays below DateTime's end (2106): past it the TTL's
        date wraps around and would drop every row at once -#}
    {{ return(50 * 365) }}
{%- endmacro %}

{% macro retention_days(layer) -%}
    {%- set name = layer ~ '_retention_days' -%}
    {%- set text = var(name) | string | trim -%}
    {%- set least = 2 if layer == 'silver' else 1 -%}
    {%- if not text.isdigit() or not (least <= text | int <= max_retention_days()) -%}
        {{ exceptions.raise_compiler_error(
            name ~ "=" ~ text ~ " is not a number of days from " ~ least ~ " to " ~ max_retention_days()
            ~ " (set by " ~ name | upper ~ " or --vars)") }}
    {%- endif -%}
    {%- if layer == 'silver' and text | int < retention_days('bronze') -%}
        {{ exceptions.raise_compiler_error(
            "silver_retention_days=" ~ text ~ " is shorter than bronze_retention_days="
            ~ retention_days('bronze') ~ ": silver keeps at least as long as bronze "
            ~ "(SILVER_RETENTION_DAYS, BRONZE_RETENTION_DAYS)") }}
    {%- endif -%}
    {{ return(text | int) }}
{%- endmacro %}

{#- silver.wiki's TTL: rows go silver_retention_days after they were ingested. By
    ingestion, not event time: a backfilled or re-logged event (meta.dt months or years
    old) is kept its full retention from the day it landed, as in bronze. -#}
{% macro silver_ttl() -%}
    toDateTime(ingested_at) + toIntervalDay({{ retention_days('silver') }})
{%- endmacro %}

{#- Bring an existing silver.wiki's TTL to silver_retention_days. The model's DDL holds
    the TTL when dbt creates the table; a table created before (no TTL) or under another
    retention keeps its old clause through `dbt run` (the materialized view's target is
    not recreated without --full-refresh), so this issues ALTER TABLE ... MODIFY TTL when
    the clause differs, nothing when it agrees. ClickHouse then drops the expired rows in
    the background (the TTL is materialized). Run at the end of `dbt run` / `dbt build`
    (on-run-end), after every model is built: a gold table created in the same run fills
    from silver before any row goes; and by the dbt service at every start
    (`dbt run-operation apply_silver_retention`), so a changed SILVER_RETENTION_DAYS takes
    effect without a new image. -#}
{% macro apply_silver_retention() -%}
    {#- not in an analyst's own database (target prod_dev): silver there is a view -#}
    {%- if execute and flags.WHICH in ('run', 'build', 'run-operation') and target.name != 'prod_dev' -%}
        {%- set days = retention_days('silver') -%}
        {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
                       | selectattr('name', 'equalto', 'wiki') | first -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if relation is not none -%}
            {%- set found = run_query(
                "select extract(engine_full, 'TTL toDateTime\\\\(ingested_at\\\\) \\\\+ toIntervalDay\\\\((\\\\d+)\\\\)') "
                ~ "from system.tables where database = '" ~ relation.schema ~ "' and name = '" ~ relation.identifier ~ "'"
            ).columns[0].values() -%}
            {%- set now = found[0] if found else '' -%}
            {%- if now != days | string -%}
                {%- do run_query("alter table " ~ relation ~ " " ~ on_cluster_clause(relation)
                                 ~ " modify ttl " ~ silver_ttl()) -%}
                {{ log("silver retention of " ~ relation.schema ~ "." ~ relation.identifier ~ " set to " ~ days ~ " days (was "
                       ~ (now ~ " days" if now else "kept for good") ~ ")", info=True) }}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- Rows bronze still holds: its TTL drops rows past its retention, silver keeps them at
    least as long, so older rows are left out of the silver-vs-bronze comparison. -#}
{% macro bronze_still_holds() -%}
    ingested_at >= now64(3) - interval {{ retention_days('bronze') - 1 }} day
{%- endmacro %}

{#- Whether silver holds every event of this hour of event time (an expression giving
    the start of an hour). Gold keeps every hour for good; silver drops rows
    silver_retention_days after their ingestion. gold.hours_ingested keeps, for good, when
    each hour's first event was ingested: an hour whose first event arrived inside the
    retention less a day has lost none (an hour that never had an event has nothing to
    lose). So gold is compared with silver exactly where silver is complete, whatever the
    event's time: a backfill of 2016's events is compared as long as it was loaded inside
    the retention. -#}
{% macro silver_holds_hour(hour) -%}
    {{ hour }} not in (
        select hour from {{ ref('hours_ingested') }}
        group by hour
        having min(first_ingested_at) < now64(3) - interval {{ retention_days('silver') - 1 }} day
    )
{%- endmacro %}

{#- gold.notable_edits keeps its rows as long as silver keeps the events they came from -#}
{% macro notable_edits_ttl() -%}
    {{ silver_ttl() }}
{%- endmacro %}
