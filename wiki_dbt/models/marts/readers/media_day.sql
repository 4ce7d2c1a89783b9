{{ config(materialized='view') }}

{#- Media bytes and transfers per day, hosting wiki and type, with the traffic split,
    from the published loads. -#}

with

loads as (

    select * from {{ ref('media_day_loads') }}
    where {{ dumps_visible() }}

),

final as (

    select
        day,
        wiki,
        family,
        media_type,
        sum(bytes) as bytes,
        sum(transfers) as transfers,
        sum(original) as original,
        sum(transcoded_image) as transcoded_image,
        sum(transcoded_audio) as transcoded_audio,
        sum(transcoded_video) as transcoded_video,
        sum(referer_internal) as referer_internal,
        sum(referer_external) as referer_external,
        sum(referer_unknown) as referer_unknown,
        sum(files) as files
    from loads
    group by day, wiki, family, media_type

)

select * from final
