{#- wiki_totals (an AggregatingMergeTree) holds at least every closed event of silver
    for each wiki, and its first event time is no later than silver's. Inequalities, so
    they hold under silver's retention too: wiki_totals keeps every event ever loaded
    (it has no hours to bound), silver drops rows past its retention, which only lowers
    silver's side. -#}

with

totals as (

    select wiki, sum(events) as gold_events, min(first_event_at) as gold_first_at
    from {{ ref('wiki_totals') }}
    group by wiki

),

counted as (

    select wiki, count() as silver_events, min(event_time) as silver_first_at
    from {{ ref('wiki') }}
    where ingested_at < {{ closed_before() }}
    group by wiki

),

final as (

    select *
    from counted
    left join totals using (wiki)
    where gold_events < silver_events or gold_first_at > silver_first_at

)

select * from final
