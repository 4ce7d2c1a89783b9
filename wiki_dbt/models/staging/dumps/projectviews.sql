{{
    config(
        engine='MergeTree()',
        order_by='(hour, domain_code, load_id)',
        partition_by='toYYYYMM(loaded_at)',
    )
}}

{#- Wikimedia's own totals per domain code and hour (the projectviews files), decoded
    like silver.pageviews: what the pageviews reconcile against. -#}

with

source as (

    select * from {{ source('dumps', 'projectviews') }}
    where fault = ''

),

final as (

    select
        load_id,
        file_hour,
        toDateTime({{ pageviews_hour('file_hour') }}, 'UTC') as hour,
        domain_code,
        toLowCardinality({{ dumps_family('domain_code') }}) as family,
        toLowCardinality({{ dumps_wiki('domain_code') }}) as wiki,
        toLowCardinality({{ dumps_access('domain_code') }}) as access,
        views,
        loaded_at
    from source

)

select * from final
