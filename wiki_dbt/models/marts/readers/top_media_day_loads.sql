{{ config(engine='AggregatingMergeTree()', order_by='(day, load_id)',
          ttl='day + toIntervalDay(' ~ var('dumps_top_days') ~ ')') }}

{#- Per day and load, topKWeighted states of media files by transfers and by bytes
    (var('top_page_candidates') candidates). Read it through `top_media_day`. -#}

with

silver as (

    select * from {{ ref('mediacounts') }}

),

final as (

    select
        day,
        load_id,
        {{ top_candidates('base_name', 'transfers', 'top_page_candidates') }} as by_transfers,
        {{ top_candidates('base_name', 'bytes', 'top_page_candidates') }} as by_bytes
    from silver
    group by day, load_id

)

select * from final
