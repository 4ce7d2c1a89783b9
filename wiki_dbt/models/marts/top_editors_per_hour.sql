{{ config(engine='AggregatingMergeTree()', order_by='(hour, user_kind)',
          settings={'index_granularity': 12}) }}

{#- The candidates for "top editors" of a long window, as top_pages_per_hour does for
    pages: a topKWeighted state of (wiki, user) by changes (categorize excluded). -#}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_editor_change() }}

),

final as (

    select
        toStartOfHour(toDateTime(event_time, 'UTC')) as hour,
        user_kind,
        topKWeightedState({{ var('top_candidates') }}, {{ var('top_load_factor') }}, 'counts')((wiki, user), toUInt64(1)) as editors
    from silver
    group by hour, user_kind

)

select * from final
