{{ config(order_by='(hour, wiki, user_kind, user)') }}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_editor_change() }}

),

final as (

    select
        toStartOfHour(toDateTime(event_time, 'UTC')) as hour,
        wiki,
        user_kind,
        user,
        count() as edits,
        {{ bytes_added() }} as bytes_added,
        {{ bytes_removed() }} as bytes_removed
    from silver
    group by hour, wiki, user_kind, user

)

select * from final
