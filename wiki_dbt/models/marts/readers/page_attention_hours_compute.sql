{{ config(materialized='view') }}

{#- A parameterized view, called by the dumps loader beside
    `page_attention_spikes_compute` (same parameters): the one row that says this
    computation of the hour exists (even when no page spiked), with the (wiki, domain
    code) pairs the hour's file holds (the wikis whose views are known that hour: a file
    loaded with --wiki holds some) and until when silver keeps its page rows. -#}

with

loads as (

    {{ dumps_published_with('{load_id:UInt64}') }}

),

hour_rows as (

    select wiki, domain_code, loaded_at
    from {{ ref('pageviews') }}
    where hour = {{ pageviews_hour("{file_hour:DateTime('UTC')}") }}
        and load_id in (select load_id from loads)

),

final as (

    select
        toDateTime({{ pageviews_hour("{file_hour:DateTime('UTC')}") }}, 'UTC') as hour,
        {file_hour:DateTime('UTC')} as file_hour,
        {load_id:UInt64} as load_id,
        {run_id:UInt64} as run_id,
        arraySort(groupUniqArray((toString(wiki), toString(domain_code)))) as codes,
        if(count() = 0, toDateTime(0, 'UTC'),
           min(loaded_at) + toIntervalDay({{ var('dumps_page_level_days') }})) as page_rows_until
    from hour_rows

)

select * from final
