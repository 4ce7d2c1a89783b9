{{ config(engine='AggregatingMergeTree()', order_by='hour') }}

{#- Per hour of event time, when its first event was ingested, kept for good: silver
    drops rows silver_retention_days after their ingestion, so an hour whose first event
    arrived inside that retention is still whole in silver (macros/retention.sql
    silver_holds_hour, which bounds the reconciliations). One row per hour. -#}

with

silver as (

    select * from {{ ref('wiki') }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        minSimpleState(ingested_at) as first_ingested_at
    from silver
    group by hour

)

select * from final
