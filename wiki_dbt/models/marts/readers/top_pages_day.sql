{{ config(materialized='view') }}

{#- The most viewed pages per wiki and day, from the published loads: rank, title,
    views (Space-Saving's count; exact unless the candidates overflowed, when `error`
    bounds the overcount). -#}

with

loads as (

    select * from {{ ref('top_pages_day_loads') }}
    where {{ dumps_visible() }}

),

merged as (

    select
        day,
        wiki,
        topKWeightedMerge({{ var('top_page_candidates') }}, {{ var('top_load_factor') }}, 'counts')(pages) as top
    from loads
    group by day, wiki

),

final as (

    select
        day,
        wiki,
        rank,
        top[rank].1 as title,
        top[rank].2 as views,
        top[rank].3 as error
    from merged
    array join arrayEnumerate(top) as rank

)

select * from final
