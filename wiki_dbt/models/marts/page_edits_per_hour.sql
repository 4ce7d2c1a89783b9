{{ config(order_by='(hour, wiki, user_kind, namespace, title)') }}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_page_edit() }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        wiki,
        user_kind,
        namespace,
        title,
        count() as edits,
        sum(byte_delta) as byte_delta
    from silver
    group by hour, wiki, user_kind, namespace, title

)

select * from final
