{{ config(materialized='view') }}

{#- Each dataset's freshness, for the dashboard's line ("views up to 14:00 UTC, 2 h
    behind"): the newest published file, and the instant the data reaches (a pageviews
    file named for hour H holds views up to H by default; a mediacounts day up to its
    end). The same facts as `wiki-events status` (dumps/status.py). -#}

with

visible as (

    select * from {{ source('dumps', 'dumps_visible') }}

),

final as (

    select
        dataset,
        count() as files,
        max(period) as newest_file,
        multiIf(
            dataset = 'mediacounts', max(period) + interval 1 day,
            {{ pageviews_hour('max(period)') }} + interval 1 hour
        ) as data_until,
        dateDiff('second', data_until, now()) as seconds_behind
    from visible
    group by dataset

)

select * from final
