{#- index_granularity is the table's; under target prod_dev the model is a view (dbt_project.yml) -#}
{{ config(engine='AggregatingMergeTree()', order_by='(hour, user_kind)',
          settings={} if target.name == 'prod_dev' else {'index_granularity': 12}) }}

{#- The candidates for "top editors" of a long window, as top_pages_per_hour does for
    pages: a topKWeighted state of (wiki, user) by edits (edits and page creations, the
    ranking of the dashboard's top editors). -#}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_page_edit() }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        user_kind,
        {{ top_candidates('(wiki, user)') }} as editors
    from silver
    group by hour, user_kind

)

select * from final
