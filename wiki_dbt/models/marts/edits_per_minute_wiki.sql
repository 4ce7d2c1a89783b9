{{ config(order_by='(minute, wiki, user_kind)') }}

{#- Edits (edits and page creations, the dashboard's one meaning of an edit) per minute,
    wiki and user kind: the headline "edits per minute now". Sorted by minute first, as
    events_per_minute_wiki, for the same reason. -#}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_page_edit() }}

),

final as (

    select
        {{ event_bucket('minute') }} as minute,
        wiki,
        user_kind,
        count() as edits
    from silver
    group by minute, wiki, user_kind

)

select * from final
