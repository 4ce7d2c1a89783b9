{{ config(materialized='view') }}

{#- Media bytes and transfers per day, hosting wiki and type, with the traffic split,
    from the published loads. -#}

with

loads as (

    select * from {{ ref('media_day_loads') }}
    where {{ dumps_visible() }}

),

final as (

    select
        day,
        wiki,
        family,
        media_type,
        {{ media_traffic_sums() }}
        sum(files) as files
    from loads
    group by day, wiki, family, media_type

)

select * from final
