{{ config(order_by='(hour, user_kind)') }}

with

silver as (

    select * from {{ ref('wiki') }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        user_kind,
        count() as events
    from silver
    group by hour, user_kind

)

select * from final
