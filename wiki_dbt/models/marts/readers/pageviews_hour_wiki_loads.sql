{{ config(order_by='(hour, wiki, access, family, load_id)',
          ttl='hour + toIntervalDay(' ~ var('dumps_hourly_days') ~ ')') }}

{#- Views per hour, wiki, access and family, per load (a load = one file, loaded once;
    `load_id` keeps a half-loaded or replaced file's rows apart so they can be hidden
    and removed). Read it through `pageviews_hour_wiki`, which keeps the published
    loads only. -#}

with

silver as (

    select * from {{ ref('pageviews') }}

),

final as (

    select
        hour,
        wiki,
        access,
        family,
        load_id,
        sum(toUInt64(views)) as views,
        count() as pages
    from silver
    group by hour, wiki, access, family, load_id

)

select * from final
