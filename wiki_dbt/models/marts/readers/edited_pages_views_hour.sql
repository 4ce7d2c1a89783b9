{{ config(materialized='view') }}

{#- The pages edited in an hour, with their views in that hour (0 when none, or when
    the wiki's views of that hour are not loaded: `views_loaded` says which): the dashboard's
    drill-down, "views of the pages edited in the last hour". -#}

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
