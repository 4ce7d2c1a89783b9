{{ config(order_by='(hour, wiki, user_kind, type)') }}

{#- Sorted by hour first: every reader (the dashboard's panels, the spikes) asks for an
    hour range, which the primary key then narrows to a few granules. A leading
    toStartOf...(hour) read every granule instead: ClickHouse does not carry a
    range on hour over to it, and rewrites toStartOfDay(hour) >= c into hour >= c. -#}

with

silver as (

    select * from {{ ref('wiki') }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        wiki,
        user_kind,
        type,
        count() as events,
        {{ bytes_added() }} as bytes_added,
        {{ bytes_removed() }} as bytes_removed,
        countIf(type = 'new') as new_pages
    from silver
    group by hour, wiki, user_kind, type

)

select * from final
