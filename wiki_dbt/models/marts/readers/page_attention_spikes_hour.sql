{{ config(materialized='view') }}

{#- Attention without the other half, per hour, wiki and page:
    - `views_without_edits`: views at least var('spike_ratio') times the page's mean
      views per hour over the previous 24 hours (a page unseen before counts 0) and at
      least var('spike_min_views'), with no edit that hour;
    - `edits_without_views`: at least var('heavy_edits') edits in an hour whose page
      views are loaded, but fewer than var('quiet_max_views') views.
    Only (hour, wiki) pairs whose page views are loaded (views of 0 would be unknown, not
    quiet): a file loaded with --wiki holds some wikis of its hour, not all. -#}

with

pages as (

    select * from {{ ref('page_views_edits_hour') }}

),

loaded as (

    select distinct hour, wiki from {{ ref('pageviews_hour_wiki') }}

),

with_baseline as (

    select
        hour,
        wiki,
        title,
        views,
        edits,
        sum(views) over (
            partition by wiki, title order by hour
            range between 86400 preceding and 1 preceding
        ) / 24 as baseline_views
    from pages
    where (hour, wiki) in (select hour, wiki from loaded)

),

final as (

    select
        hour,
        wiki,
        title,
        views,
        edits,
        baseline_views,
        multiIf(
            views >= {{ var('spike_min_views') }}
                and views >= {{ var('spike_ratio') }} * baseline_views
                and edits = 0, 'views_without_edits',
            edits >= {{ var('heavy_edits') }} and views < {{ var('quiet_max_views') }},
                'edits_without_views',
            ''
        ) as kind
    from with_baseline

)

select * from final where kind != ''
