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
        topKWeightedState({{ var('top_page_candidates') }}, {{ var('top_load_factor') }}, 'counts')(base_name, transfers) as by_transfers,
        topKWeightedState({{ var('top_page_candidates') }}, {{ var('top_load_factor') }}, 'counts')(base_name, bytes) as by_bytes
    from silver
    group by day, load_id

)

select * from final
