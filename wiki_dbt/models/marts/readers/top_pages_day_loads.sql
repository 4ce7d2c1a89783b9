{{ config(engine='AggregatingMergeTree()', order_by='(day, wiki, load_id)',
          ttl='day + toIntervalDay(' ~ var('dumps_top_days') ~ ')') }}

{#- Per day, wiki and load (one hour's file), a topKWeighted state of titles by views
    (Filtered Space-Saving with counts, var('top_page_candidates') candidates): the top
    pages of a day merge 24 of them instead of reading ~150M page rows. Exact while a
    wiki has fewer distinct titles in an hour than candidates; approximate above. -#}

with

silver as (

    select * from {{ ref('pageviews') }}

),

final as (

    select
        toDate(hour) as day,
        wiki,
        load_id,
        {{ top_candidates('title', 'toUInt64(views)', 'top_page_candidates') }} as pages
    from silver
    group by day, wiki, load_id

)

select * from final
