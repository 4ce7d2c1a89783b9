{#- gold.notable_edits holds exactly silver's edits and page creations of at least
    var('notable_bytes') bytes either way, event by event, over the closed hours silver
    still holds whole. Returns the events on one side only. -#}

{%- set hour = "toStartOfHour(toDateTime(event_time, 'UTC'))" -%}

with

gold as (

    select event_id from {{ ref('notable_edits') }}
    where event_time < {{ closed_before() }}
        and {{ silver_holds_hour(hour) }}

),

silver as (

    select event_id from {{ ref('wiki') }}
    where {{ is_page_edit() }}
        and abs(byte_delta) >= {{ var('notable_bytes') }}
        and event_time < {{ closed_before() }}
        and {{ silver_holds_hour(hour) }}

),

final as (

    select 'gold only' as side, event_id from gold
    where event_id not in (select event_id from silver)
    union all
    select 'silver only' as side, event_id from silver
    where event_id not in (select event_id from gold)

)

select * from final
