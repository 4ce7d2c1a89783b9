{{ config(materialized='view') }}

{#- Per hour, wiki and page: views (the dumps, desktop + mobile) and edits (the live
    stream) side by side, for every page that has either, over the hours silver's
    page-level views still hold (var('dumps_page_level_days')). Titles are matched as
    the live stream writes them (spaces; the dumps write `_`). -#}

with

views as (

    select hour, wiki, replaceAll(title, '_', ' ') as title, sum(toUInt64(views)) as views
    from {{ ref('pageviews') }}
    where {{ dumps_visible() }}
    group by hour, wiki, title

),

edits as (

    select hour, wiki, title, sum(edits) as edits
    from {{ ref('page_edits_per_hour') }}
    where hour >= (select min(hour) from {{ ref('pageviews') }})
    group by hour, wiki, title

),

final as (

    select
        hour,
        wiki,
        title,
        views.views as views,
        edits.edits as edits
    from views
    full outer join edits using (hour, wiki, title)

)

select * from final
