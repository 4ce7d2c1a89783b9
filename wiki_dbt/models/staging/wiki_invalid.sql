{{ config(materialized='view') }}

{#- Bronze rows that silver leaves out, with the reason: events missing a key silver
    needs, or with a wiki that is no wiki's name. A view, read on demand; the loader's
    judge already rejected anything that was not JSON, had no meta.id / meta.dt, or was
    a canary. -#}

with

source as (

    select * from {{ source('bronze', 'wiki_raw') }}

),

parsed as (

    {{ parse_bronze('source', keep_raw=true) }}

),

final as (

    select
        event_id,
        event_time,
        ingested_at,
        wiki,
        type_raw,
        {{ invalid_reason('e', 'wiki', 'type_raw') }} as reason,
        raw
    from parsed

)

select * from final
where reason != ''
