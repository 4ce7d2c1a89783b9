{#- gold.hours_ingested, which bounds the reconciliations to the hours silver holds
    whole, knows every hour silver has, no later than silver's earliest ingestion in it
    (earlier when silver dropped the hour's first rows). A missing hour or a later time
    would have the reconciliations compare an hour silver may have lost rows of. Returns
    the hours where it does not. -#}

with

silver as (

    select {{ event_bucket('hour') }} as hour, min(ingested_at) as first_held
    from {{ ref('wiki') }}
    where ingested_at < {{ closed_before() }}
    group by hour

),

gold as (

    select hour, min(first_ingested_at) as first_ingested_at, 1 as known
    from {{ ref('hours_ingested') }}
    group by hour

),

final as (

    select silver.hour as hour, first_held, gold.first_ingested_at as first_ingested_at
    from silver
    left join gold on silver.hour = gold.hour
    where gold.known = 0 or gold.first_ingested_at > silver.first_held

)

select * from final
