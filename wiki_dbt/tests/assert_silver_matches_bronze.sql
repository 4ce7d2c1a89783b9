{#- Every bronze row is in silver or in wiki_invalid, exactly once, per hour of event
    time, for rows that arrived before the closed-window cutoff. Returns the hours where
    the counts differ. -#}

with

bronze as (

    select toStartOfHour(event_time) as hour, count() as n
    from {{ source('bronze', 'wiki_raw') }}
    where ingested_at < {{ closed_before() }} and {{ bronze_still_holds() }}
    group by hour

),

silver as (

    select toStartOfHour(event_time) as hour, count() as n
    from {{ ref('wiki') }}
    where ingested_at < {{ closed_before() }} and {{ bronze_still_holds() }}
    group by hour

),

invalid as (

    select toStartOfHour(event_time) as hour, count() as n
    from {{ ref('wiki_invalid') }}
    where ingested_at < {{ closed_before() }} and {{ bronze_still_holds() }}
    group by hour

),

final as (

    select
        hour,
        bronze.n as bronze_rows,
        silver.n as silver_rows,
        invalid.n as invalid_rows
    from bronze
    full outer join silver using (hour)
    full outer join invalid using (hour)
    where bronze_rows != silver_rows + invalid_rows

)

select * from final
