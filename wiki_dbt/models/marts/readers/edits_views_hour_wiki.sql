{{ config(materialized='view') }}

{#- Per wiki and hour: the live stream's edits (page edits and creations; `edit`, `new`)
    beside the readers' views (the dumps), and edits per 1,000 views. An hour appears
    once either side has it; views are 0 where the hour's file is not loaded yet. -#}

with

edits as (

    select hour, wiki, sum(events) as edits
    from {{ ref('events_per_hour_wiki') }}
    where type in ('edit', 'new')
    group by hour, wiki

),

views as (

    select hour, wiki, sum(views) as views
    from {{ ref('pageviews_hour_wiki') }}
    group by hour, wiki

),

final as (

    select
        hour,
        wiki,
        edits.edits as edits,
        views.views as views,
        if(views.views = 0, null, round(edits.edits * 1000 / views.views, 3)) as edits_per_1000_views
    from edits
    full outer join views using (hour, wiki)

)

select * from final
