{{ config(materialized='view') }}

{#- The average number of events a wiki has in an hour of a given weekday (UTC), over
    the weeks observed: the sum over every observed occurrence of that slot divided by the
    number of occurrences. An hour counts as observed when the stream delivered any event
    in it; a wiki quiet in an observed hour counts as 0 there, so the average is not
    inflated by only counting the hours a wiki was active. A view over gold sums: always
    current, never stored twice. -#}

with

hourly as (

    select * from {{ ref('events_per_hour') }}

),

hourly_wiki as (

    select * from {{ ref('events_per_hour_wiki') }}

),

observed_hours as (

    select hour
    from hourly
    group by hour
    having sum(events) > 0

),

slots as (

    select
        toDayOfWeek(hour) as weekday,
        toHour(hour) as hour_of_day,
        count() as weeks_observed
    from observed_hours
    group by weekday, hour_of_day

),

per_wiki as (

    select
        wiki,
        toDayOfWeek(hour) as weekday,
        toHour(hour) as hour_of_day,
        sum(events) as events
    from hourly_wiki
    group by wiki, weekday, hour_of_day

),

final as (

    select
        per_wiki.wiki as wiki,
        slots.weekday as weekday,
        slots.hour_of_day as hour_of_day,
        per_wiki.events as events,
        slots.weeks_observed as weeks_observed,
        per_wiki.events / slots.weeks_observed as avg_events
    from per_wiki
    inner join slots
        on per_wiki.weekday = slots.weekday and per_wiki.hour_of_day = slots.hour_of_day

)

select * from final
