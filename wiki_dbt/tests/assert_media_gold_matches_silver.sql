{{ config(enabled=var('dumps', false)) }}

{#- media_day equals summing silver's published media rows, per day, wiki and type;
    and each media row's transfers equal its parts (original + transcodes) and its
    referer split, as the mediacounts columns promise. -#}

with

silver as (

    select * from {{ ref('mediacounts') }}
    where {{ dumps_visible() }}

),

by_day as (

    select day, wiki, media_type, sum(bytes) as bytes, sum(transfers) as transfers
    from silver group by day, wiki, media_type

)

select 'media_day' as model, toString(tuple(day, wiki, media_type)) as key,
       toString(tuple(g.bytes, g.transfers)) as gold, toString(tuple(s.bytes, s.transfers)) as silver
from (
    select day, wiki, media_type, sum(bytes) as bytes, sum(transfers) as transfers
    from {{ ref('media_day') }} group by all
) as g
full outer join by_day as s using (day, wiki, media_type)
where g.bytes != s.bytes or g.transfers != s.transfers

union all

select 'mediacounts (split)', base_name, toString(transfers),
       toString(tuple(original + transcoded_image + transcoded_audio + transcoded_video,
                      referer_internal + referer_external + referer_unknown))
from silver
where transfers != original + transcoded_image + transcoded_audio + transcoded_video
   or transfers != referer_internal + referer_external + referer_unknown
