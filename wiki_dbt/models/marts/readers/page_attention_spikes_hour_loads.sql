{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        engine='MergeTree()',
        order_by='(hour, run_id, wiki, title)',
        ttl='hour + toIntervalDay(' ~ var('dumps_top_days') ~ ')',
    )
}}

{#- The views side of each hour's views spikes, one set of rows per computation
    (`run_id`) of an hour, written by the dumps loader through
    `page_attention_spikes_compute` while a pageviews load is checked, before the
    ledger publishes it; `load_id` is that load, so a load that fails or is replaced
    takes its computations with it. dbt only creates the table (no rows). Read
    `page_attention_spikes_hour`. -#}

select * from {{ ref('page_attention_spikes_compute') }}(
    load_id = 0, run_id = 0, file_hour = '1970-01-02 00:00:00'
)
where 0
