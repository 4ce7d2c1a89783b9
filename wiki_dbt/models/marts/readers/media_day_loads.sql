{{ config(order_by='(day, wiki, family, media_type, load_id)',
          ttl='day + toIntervalDay(' ~ var('dumps_daily_days') ~ ')') }}

{#- Media traffic per day, hosting wiki, family and media type, per load; the traffic
    split summed. Read it through `media_day`. -#}

with

silver as (

    select * from {{ ref('mediacounts') }}

),

final as (

    select
        day,
        wiki,
        family,
        media_type,
        load_id,
        sum(bytes) as bytes,
        sum(transfers) as transfers,
        sum(original) as original,
        sum(transcoded_image) as transcoded_image,
        sum(transcoded_audio) as transcoded_audio,
        sum(transcoded_video) as transcoded_video,
        sum(referer_internal) as referer_internal,
        sum(referer_external) as referer_external,
        sum(referer_unknown) as referer_unknown,
        count() as files
    from silver
    group by day, wiki, family, media_type, load_id

)

select * from final
