{{ config(materialized='view') }}

{#- The pages edited in an hour, with their views in that hour (0 when none, or when
    the wiki's views of that hour are not loaded: `views_loaded` says which), for every
    hour silver's page rows hold: for analysts. It joins all of those rows, so the
    dashboard's drill-down ("views of the pages edited in the last hour") does not read
    it: the dumps lag the edits by hours, so the panel sets the last hour's edits against
    the newest loaded hour of views, read from silver by its primary key for one wiki
    and 20 titles (dash_app/queries.py, DRILL_VIEWS). -#}

with

pages as (

    select * from {{ ref('page_views_edits_hour') }}
    where edits > 0

),

loaded as (

    select distinct hour, wiki from {{ ref('pageviews_hour_wiki') }}

),

final as (

    select
        hour,
        wiki,
        title,
        edits,
        views,
        (hour, wiki) in (select hour, wiki from loaded) as views_loaded
    from pages

)

select * from final
