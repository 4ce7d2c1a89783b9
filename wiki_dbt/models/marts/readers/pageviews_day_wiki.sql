{{ config(materialized='view') }}

{#- Views per day and wiki from the published loads (a day is complete when its 24
    hours are loaded: `hours` says how many are). -#}

with

loads as (

    select * from {{ ref('pageviews_day_wiki_loads') }}
    where {{ dumps_visible() }}

),

final as (

    select
        day,
        wiki,
        any(family) as family,
        sum(views) as views,
        sum(desktop_views) as desktop_views,
        sum(mobile_views) as mobile_views,
        uniqExact(load_id) as hours
    from loads
    group by day, wiki

)

select * from final
