{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        engine='MergeTree()',
        order_by='(hour, run_id)',
        ttl='hour + toIntervalDay(' ~ var('dumps_top_days') ~ ')',
    )
}}

{#- One row per computation of an hour's spikes (`run_id`), written with its rows in
    `page_attention_spikes_hour_loads` through `page_attention_hours_compute`: which
    hour, by which load, the (wiki, domain code) pairs the hour's file holds, and until
    when silver keeps the hour's page rows. Per hour, the newest computation whose load
    is visible is the one gold shows. dbt only creates the table (no rows). -#}

select * from {{ ref('page_attention_hours_compute') }}(
    load_id = 0, run_id = 0, file_hour = '1970-01-02 00:00:00'
)
where 0
