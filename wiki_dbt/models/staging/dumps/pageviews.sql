{{
    config(
        engine='MergeTree()',
        order_by='(hour, domain_code, title, load_id)',
        partition_by='toYYYYMMDD(loaded_at)',
        ttl='loaded_at + toIntervalDay(' ~ var('dumps_page_level_days') ~ ')',
    )
}}

{#- Silver page views: one row per (hour, domain code, page) of a pageviews file, the
    domain code decoded into the wiki (EventStreams dbname), project family and access.
    Page-level rows are the bulk of the volume (~150M a day): kept
    var('dumps_page_level_days') days after loading; the daily rollups in gold stay.
    Sorted as the files are (code, then title): each inserted block arrives sorted, so
    writing it costs no sort (sorted by wiki, a 6M-line hour spent ~1.5 s of CPU there). -#}

with

source as (

    select * from {{ source('dumps', 'pageviews') }}
    where fault = ''

),

decoded as (

    select
        load_id,
        file_hour,
        {{ pageviews_hour('file_hour') }} as hour,
        domain_code,
        {{ dumps_family('domain_code') }} as family,
        {{ dumps_wiki('domain_code') }} as wiki,
        {{ dumps_access('domain_code') }} as access,
        if(isValidUTF8(title), title, toValidUTF8(title)) as title,
        views,
        loaded_at
    from source

),

final as (

    select
        load_id,
        file_hour,
        toDateTime(hour, 'UTC') as hour,
        domain_code,
        toLowCardinality(wiki) as wiki,
        toLowCardinality(family) as family,
        toLowCardinality(access) as access,
        title,
        views,
        loaded_at
    from decoded

)

select * from final
