{{ config(materialized='view') }}

{#- The pages edited in an hour, with their views in that hour (0 when none, or when
    the hour's file is not loaded yet: `views_loaded` says which): the dashboard's
    drill-down, "views of the pages edited in the last hour". -#}

with

pages as (

    select * from {{ ref('page_views_edits_hour') }}
    where edits > 0

),

loaded_hours as (

    select distinct hour from {{ ref('pageviews_hour_wiki') }}

),

final as (

    select
        hour,
        wiki,
        title,
        edits,
        views,
        hour in (select hour from loaded_hours) as views_loaded
    from pages

)

select * from final
