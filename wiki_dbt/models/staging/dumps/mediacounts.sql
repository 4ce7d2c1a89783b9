{{
    config(
        engine='MergeTree()',
        order_by='(day, wiki, base_name, load_id)',
        partition_by='toYYYYMM(loaded_at)',
        ttl='loaded_at + toIntervalDay(' ~ var('dumps_media_file_days') ~ ')',
    )
}}

{#- Silver media traffic: one row per media file and day, with the hosting wiki and
    project family from the file's path, its type from the extension, and the traffic
    split: originals, transcoded images / audio / video; internal / external / unknown
    referers. -#}

with

source as (

    select * from {{ source('dumps', 'mediacounts') }}
    where fault = ''

),

final as (

    select
        load_id,
        day,
        base_name,
        toLowCardinality({{ media_wiki('base_name') }}) as wiki,
        toLowCardinality(if(wiki = '', 'none', splitByChar('/', base_name)[2])) as family,
        toLowCardinality({{ media_type('base_name') }}) as media_type,
        total_response_size as bytes,
        total as transfers,
        original,
        transcoded_image,
        transcoded_audio,
        transcoded_movie as transcoded_video,
        referer_internal,
        referer_external,
        referer_unknown,
        loaded_at
    from source

)

select * from final
