{#- Over all slots, average times weeks observed gives back the hourly sums: the profile
    divides, it never sums the weeks. Gold against gold (no silver): silver's retention
    does not touch it. -#}

with

profile as (

    select wiki, sum(avg_events * weeks_observed) as profile_events
    from {{ ref('wiki_weekday_hour_profile') }}
    group by wiki

),

hourly as (

    select wiki, sum(events) as hourly_events
    from {{ ref('events_per_hour_wiki') }}
    group by wiki

)

select *
from profile
full outer join hourly using (wiki)
where abs(profile_events - hourly_events) > 0.001

