{{ config(engine='AggregatingMergeTree()', order_by='wiki') }}

with

silver as (

    select * from {{ ref('wiki') }}

),

final as (

    select
        wiki,
        sumSimpleState(toUInt64(1)) as events,
        minSimpleState(event_time) as first_event_at,
        maxSimpleState(event_time) as last_event_at,
        maxSimpleState(ingested_at) as last_ingested_at,
        uniqState(user) as editors,
        uniqState(title) as pages
    from silver
    group by wiki

)

select * from final
