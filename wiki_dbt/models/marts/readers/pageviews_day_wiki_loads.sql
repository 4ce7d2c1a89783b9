{{ config(order_by='(day, wiki, family, load_id)',
          ttl='day + toIntervalDay(' ~ var('dumps_daily_days') ~ ')') }}

{#- Views per day and wiki, desktop and mobile apart, per load: the long-kept rollup
    (var('dumps_daily_days')). Read it through `pageviews_day_wiki`. -#}

with

silver as (

    select hour, wiki, family, access, load_id, toUInt64(views) as page_views
    from {{ ref('pageviews') }}

),

final as (

    select
        toDate(hour) as day,
        wiki,
        family,
        load_id,
        sum(page_views) as views,
        sumIf(page_views, access = 'desktop') as desktop_views,
        sumIf(page_views, access = 'mobile') as mobile_views
    from silver
    group by day, wiki, family, load_id

)

select * from final
