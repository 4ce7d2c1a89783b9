{{ config(engine='AggregatingMergeTree()', order_by='(day, user_kind)',
          settings={} if target.name == 'prod_dev' else {'index_granularity': 12}) }}

{#- top_pages_per_hour's states merged by day: a week's candidates merge ~21 daily
    states and the partial days' hourly ones instead of ~500 hourly states (43 ms of the
    week's top pages). Fed by top_pages_per_hour's inserts (a view on a gold table), so a
    new deployment's first build fills it from every hour gold holds. Candidates only:
    the counts shown are summed exactly from page_edits_by_page. -#}

with

hourly as (

    select * from {{ ref('top_pages_per_hour') }}

),

final as (

    select
        toStartOfDay(hour) as day,
        user_kind,
        {{ top_candidates_merged('pages') }} as pages
    from hourly
    group by day, user_kind

)

select * from final
