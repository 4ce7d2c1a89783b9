{{ config(order_by='(minute, user_kind)') }}

with

silver as (

    select * from {{ ref('wiki') }}

),

final as (

    select
        {{ event_bucket('minute') }} as minute,
        user_kind,
        count() as events
    from silver
    group by minute, user_kind

)

select * from final
