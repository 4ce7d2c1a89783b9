{{ config(order_by='(wiki, hour, user_kind)') }}

{#- A wiki's events per hour and user kind, sorted by wiki: the drill-down's series and
    its usual week read one wiki's hours (13 weeks: ~4,400 rows) instead of every wiki's
    rows of those hours (events_per_hour_wiki: ~4M). Fed by events_per_hour_wiki's
    inserts (a view on a gold table), so a new deployment's first build fills it from
    every hour gold holds. -#}

with

hourly as (

    select * from {{ ref('events_per_hour_wiki') }}

),

final as (

    select wiki, hour, user_kind, sum(events) as events
    from hourly
    group by wiki, hour, user_kind

)

select * from final
