{{ config(engine='AggregatingMergeTree()', order_by='(day, user_kind)',
          settings={} if target.name == 'prod_dev' else {'index_granularity': 12}) }}

{#- top_editors_per_hour's states merged by day, as top_pages_per_day does for pages;
    the counts shown are summed exactly from editor_edits_by_editor. -#}

with

hourly as (

    select * from {{ ref('top_editors_per_hour') }}

),

final as (

    select
        toStartOfDay(hour) as day,
        user_kind,
        {{ top_candidates_merged('editors') }} as editors
    from hourly
    group by day, user_kind

)

select * from final
