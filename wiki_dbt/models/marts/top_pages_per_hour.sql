{#- index_granularity is the table's; under target prod_dev the model is a view (dbt_project.yml) -#}
{{ config(engine='AggregatingMergeTree()', order_by='(hour, user_kind)',
          settings={} if target.name == 'prod_dev' else {'index_granularity': 12}) }}

{#- The candidates for "top pages" of any window: per hour and user kind, a
    topKWeighted state (Filtered Space-Saving, with counts and their error) of
    (wiki, title) by edits. Merging a week of them reads a few hundred states instead of
    millions of page-hour rows. A state is ~14 KB: granules of 12 rows (4 hours) let a
    query of a few hours read a few states, not the 8192 of a default granule (a month
    of them took 75 ms to read for any window; 7 ms now for 6 hours). -#}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_page_edit() }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        user_kind,
        {{ top_candidates('(wiki, title)') }} as pages
    from silver
    group by hour, user_kind

)

select * from final
