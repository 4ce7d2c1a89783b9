{{
    config(
        engine='MergeTree()',
        order_by='(toStartOfHour(event_time), wiki, event_id)',
        partition_by='toYYYYMM(ingested_at)',
        ttl=silver_ttl(),
    )
}}

{#- Kept silver_retention_days (SILVER_RETENTION_DAYS) after ingestion, by the TTL in
    this table's DDL; an existing table's TTL is brought to the setting at the end of
    every dbt run (macros/retention.sql apply_silver_retention). -#}

with

source as (

    select * from {{ source('bronze', 'wiki_raw') }}

),

parsed as (

    {{ parse_bronze('source') }}

),

valid as (

    select * from parsed
    where {{ invalid_reason('e', 'wiki', 'type_raw') }} = ''

),

final as (

    select
        event_id,
        event_time,
        ingested_at,
        wiki,
        toLowCardinality(e.meta.domain) as domain,
        toLowCardinality({{ rc_type_name('type_raw') }}) as type,
        type_raw,
        assumeNotNull(e.namespace) as namespace,
        assumeNotNull(e.title) as title,
        e.user as user,
        e.bot as is_bot,
        toLowCardinality({{ user_kind('e.user', 'e.bot') }}) as user_kind,
        e.minor as is_minor,
        e.patrolled as is_patrolled,
        e.length.old as length_old,
        e.length.new as length_new,
        toInt64(ifNull(e.length.new, 0)) - toInt64(ifNull(e.length.old, 0)) as byte_delta,
        e.revision.old as revision_old,
        e.revision.new as revision_new,
        toLowCardinality(e.log_type) as log_type,
        toLowCardinality(e.log_action) as log_action
    from valid

)

select * from final
