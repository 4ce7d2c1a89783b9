{{ config(materialized='view') }}

{#- A parameterized view (ClickHouse: `{name:Type}` parameters), called by the dumps
    loader once per hour it (re)computes, never read directly:
        INSERT INTO gold.page_attention_spikes_hour_loads
        SELECT * FROM gold.page_attention_spikes_compute(load_id=.., run_id=.., file_hour=..)
    The views side of `views_without_edits` for the hour of the pageviews file
    `file_hour`: the pages with at least var('spike_min_views') views and at least
    var('spike_ratio') times their mean views per hour over the previous 24 hours (a page
    unseen before counts 0), whatever their edits (edits keep arriving after the views are
    loaded: `page_attention_spikes_hour` reads them when it is queried).
    Silver as it will be once `load_id` is published: the visible loads, with `load_id`
    in place of the file it replaces (it is not visible yet while it is computed).
    Reads the hour's rows with enough views to be part of a spike (the candidates), then
    the hour and the 24 before once, keeping the candidates' rows: no window over every
    page row of silver, no sort. -#}

with

loads as (

    {{ dumps_published_with('{load_id:UInt64}') }}

),

silver as (

    select * from {{ ref('pageviews') }}
    where load_id in (select load_id from loads)

),

widest as (

    {#- the most domain codes one wiki has in the hour (desktop, mobile; `.zero` in old
        files): a page whose rows sum to spike_min_views has a row of at least
        spike_min_views / widest -#}
    select max(codes) as codes
    from (
        select wiki, uniqExact(domain_code) as codes
        from silver
        where hour = {{ pageviews_hour("{file_hour:DateTime('UTC')}") }}
        group by wiki
    )

),

candidates as (

    {#- by title alone: a set of strings, half the CPU of (wiki, title) pairs over the 25
        hours' rows; the other wikis' pages of those titles drop out below (their views
        fall short) or are spikes of their own (then their title is a candidate anyway) -#}
    select distinct title
    from silver
    where hour = {{ pageviews_hour("{file_hour:DateTime('UTC')}") }}
        and views * (select codes from widest) >= {{ var('spike_min_views') }}

),

pages as (

    {#- one pass over the hour and the 24 before, for the candidates' rows only -#}
    select
        wiki,
        title,
        sumIf(toUInt64(views), hour = {{ pageviews_hour("{file_hour:DateTime('UTC')}") }})
            as hour_views,
        sumIf(toUInt64(views), hour < {{ pageviews_hour("{file_hour:DateTime('UTC')}") }}) / 24
            as mean_views
    from silver
    where hour >= {{ pageviews_hour("{file_hour:DateTime('UTC')}") }} - interval 24 hour
        and hour <= {{ pageviews_hour("{file_hour:DateTime('UTC')}") }}
        and title in (select title from candidates)
    group by wiki, title

),

final as (

    select
        toDateTime({{ pageviews_hour("{file_hour:DateTime('UTC')}") }}, 'UTC') as hour,
        wiki,
        replaceAll(title, '_', ' ') as title,
        hour_views as views,
        mean_views as baseline_views,
        {load_id:UInt64} as load_id,
        {run_id:UInt64} as run_id
    from pages
    where hour_views >= {{ var('spike_min_views') }}
        and hour_views >= {{ var('spike_ratio') }} * mean_views

)

select * from final
