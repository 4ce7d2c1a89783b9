{{ config(materialized='view') }}

{#- The most requested media files per day (by transfers), with their rank, from the
    published loads. The same by bytes: `topKWeightedMerge(...)(by_bytes)` on the
    table. -#}

with

loads as (

    select * from {{ ref('top_media_day_loads') }}
    where {{ dumps_visible() }}

),

merged as (

    select
        day,
        topKWeightedMerge({{ var('top_page_candidates') }}, {{ var('top_load_factor') }}, 'counts')(by_transfers) as top
    from loads
    group by day

),

final as (

    select
        day,
        rank,
        top[rank].1 as base_name,
        top[rank].2 as transfers,
        top[rank].3 as error
    from merged
    array join arrayEnumerate(top) as rank

)

select * from final
