{{ config(order_by='(minute, wiki, user_kind)') }}

{#- Sorted by minute first: every reader (the dashboard's panels, the spikes) asks for a
    minute range, which the primary key then narrows to a few granules. A leading
    toStartOf...(minute) read every granule instead: ClickHouse does not carry a
    range on minute over to it, and rewrites toStartOfDay(minute) >= c into minute >= c. -#}

with

silver as (

    select * from {{ ref('wiki') }}

),

final as (

    select
        {{ event_bucket('minute') }} as minute,
        wiki,
        user_kind,
        count() as events
    from silver
    group by minute, wiki, user_kind

)

select * from final
