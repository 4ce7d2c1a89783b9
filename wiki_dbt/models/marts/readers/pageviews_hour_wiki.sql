{{ config(materialized='view') }}

{#- Views per hour (when they happened), wiki and access, from the published loads;
    sums folded at read time, whether or not parts have merged. -#}

with

loads as (

    select * from {{ ref('pageviews_hour_wiki_loads') }}
    where {{ dumps_visible() }}

),

final as (

    select
        hour,
        wiki,
        access,
        any(family) as family,
        sum(views) as views,
        sum(pages) as pages
    from loads
    group by hour, wiki, access

)

select * from final
