{{ config(order_by='(title, wiki, hour, user_kind, namespace)',
          settings=by_key_settings()) }}

{#- page_edits_per_hour sorted by page: a window's edits of a few pages (the exact counts
    of the top pages' candidates, the lookup page) read those pages' granules, not every
    page row of the window (a week: 7.4M rows, 240 ms). Small granules and compression
    blocks (by_key_settings()): a page's rows are a few, so a default granule (8192
    rows) and block (64 KiB+) would read and decompress hundreds of other pages' rows per
    page. Fed by page_edits_per_hour's inserts (a view on a gold table), so a new
    deployment's first build fills it from every hour gold holds. -#}

with

hourly as (

    select * from {{ ref('page_edits_per_hour') }}

),

final as (

    select hour, wiki, user_kind, namespace, title, edits, byte_delta
    from hourly

)

select * from final
