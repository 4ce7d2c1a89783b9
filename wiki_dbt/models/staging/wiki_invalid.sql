{{ config(materialized='view') }}

{#- Bronze rows that silver leaves out, with the reason: canaries, and events missing a
    key silver needs. A view, read on demand; the loader already quarantined anything
    that was not JSON or had no meta.id / meta.dt. -#}

with

source as (

    select * from {{ source('bronze', 'wiki_raw') }}

),

parsed as (

    select
        event_id,
        event_time,
        ingested_at,
        wiki,
        type as type_raw,
        {{ recentchange_fields('raw') }} as e,
        raw
    from source

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
