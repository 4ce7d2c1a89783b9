{{ config(materialized='view') }}

{#- Attention without the other half, per hour, wiki and page:
    - `views_without_edits`: views at least var('spike_ratio') times the page's mean
      views per hour over the previous 24 hours (a page unseen before counts 0) and at
      least var('spike_min_views'), with no edit that hour;
    - `edits_without_views`: at least var('heavy_edits') edits in an hour whose page
      views are loaded, but fewer than var('quiet_max_views') views.
    Only (hour, wiki) pairs whose page views are loaded (views of 0 would be unknown, not
    quiet): a file loaded with --wiki holds some wikis of its hour, not all.

    Materialized per loaded hour, edits read when queried:
    - the views side of a views spike is computed once per hour by the dumps loader
      (`page_attention_spikes_hour_loads`, through `page_attention_spikes_compute`), and
      again for the 24 hours after it when an hour is loaded late or republished (their
      baselines include it). Per hour, the newest computation whose load is visible shows.
    - edits: always as of the query. Edits keep arriving after an hour's views were
      loaded, so the spikes' few pages are looked up in `page_edits_per_hour` now; and the
      heavily edited pages (few) have their views and baseline looked up in silver by its
      sorting key (hour, domain code, title), in the hours whose page rows silver still
      holds (`page_rows_until`; after that their views are unknown, not quiet). -#}

with

hours as (

    select * from {{ ref('page_attention_hours_loads') }}
    where {{ dumps_visible() }}

),

current_runs as (

    select hour, max(run_id) as run_id from hours group by hour

),

loaded as (

    {#- the newest computation's (wiki, domain code) pairs, each hour: one read of
        `hours`, not two (every reference to a CTE is planned and run again, and this
        one is referenced, through the others, a dozen times) -#}
    select
        hour,
        code.1 as wiki,
        code.2 as domain_code,
        current.2 as page_rows_until
    from (
        select hour, argMax(tuple(codes, page_rows_until), run_id) as current
        from hours
        group by hour
    )
    array join current.1 as code

),

view_spikes as (

    select hour, wiki, title, views, baseline_views
    from {{ ref('page_attention_spikes_hour_loads') }}
    where (hour, run_id) in (select hour, run_id from current_runs)

),

spike_edits as (

    select hour, wiki, title, sum(edits) as edits
    from {{ ref('page_edits_per_hour') }}
    where (hour, wiki, title) in (select hour, wiki, title from view_spikes)
    group by hour, wiki, title

),

views_without_edits as (

    select
        view_spikes.hour as hour,
        view_spikes.wiki as wiki,
        view_spikes.title as title,
        view_spikes.views as views,
        spike_edits.edits as edits,
        view_spikes.baseline_views as baseline_views,
        'views_without_edits' as kind
    from view_spikes
    left join spike_edits using (hour, wiki, title)
    where edits = 0

),

heavy as (

    select hour, wiki, title, sum(edits) as edits
    from {{ ref('page_edits_per_hour') }}
    where (hour, wiki) in (select hour, wiki from loaded where page_rows_until > now())
    group by hour, wiki, title
    having edits >= {{ var('heavy_edits') }}

),

lookups as (

    {#- each heavy page in every (hour, domain code) of its wiki loaded in its hour and
        the 24 before: the keys silver is read by -#}
    select
        heavy.hour as spike_hour,
        heavy.wiki as wiki,
        heavy.title as title,
        heavy.edits as edits,
        loaded.hour as hour,
        loaded.domain_code as domain_code,
        replaceAll(heavy.title, ' ', '_') as dumps_title
    from heavy
    inner join loaded on heavy.wiki = loaded.wiki
    where loaded.hour between heavy.hour - interval 24 hour and heavy.hour

),

page_views as (

    select hour, domain_code, title as dumps_title, sum(toUInt64(views)) as views
    from {{ ref('pageviews') }}
    where (hour, domain_code, title) in (select hour, domain_code, dumps_title from lookups)
        and {{ dumps_visible() }}
    group by hour, domain_code, title

),

heavy_views as (

    select
        lookups.spike_hour as hour,
        lookups.wiki as wiki,
        lookups.title as title,
        any(lookups.edits) as edits,
        sumIf(page_views.views, lookups.hour = lookups.spike_hour) as views,
        sumIf(page_views.views, lookups.hour < lookups.spike_hour) / 24 as baseline_views
    from lookups
    left join page_views using (hour, domain_code, dumps_title)
    group by lookups.spike_hour, lookups.wiki, lookups.title

),

edits_without_views as (

    {#- the heavy pages' edits come with them through `lookups`: no join back to `heavy`,
        which would plan and run it, and `loaded` under it, once more -#}
    select hour, wiki, title, views, edits, baseline_views, 'edits_without_views' as kind
    from heavy_views
    where views < {{ var('quiet_max_views') }}

),

final as (

    select * from views_without_edits
    union all
    select * from edits_without_views

)

select * from final
