{{ config(order_by='(day, wiki, family, media_type, load_id)',
          ttl='day + toIntervalDay(' ~ var('dumps_daily_days') ~ ')') }}

{#- Media traffic per day, hosting wiki, family and media type, per load; the traffic
    split summed. Read it through `media_day`. -#}

with

silver as (

    select * from {{ ref('mediacounts') }}

),

final as (

    select
        day,
        wiki,
        family,
        media_type,
        load_id,
        {{ media_traffic_sums() }}
        count() as files
    from silver
    group by day, wiki, family, media_type, load_id

)

select * from final
