{{ config(materialized='view') }}

{#- Pages both heavily read and heavily edited in the same hour: at least
    var('heavy_views') views and var('heavy_edits') edits. -#}

select hour, wiki, title, views, edits
from {{ ref('page_views_edits_hour') }}
where views >= {{ var('heavy_views') }} and edits >= {{ var('heavy_edits') }}
