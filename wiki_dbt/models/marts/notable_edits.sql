{{
    config(
        engine='MergeTree()',
        order_by='(event_time, wiki)',
        ttl=notable_edits_ttl(),
    )
}}

{#- The edits worth a look as they happen (the dashboard's live list): edits and page
    creations that changed the page by at least var('notable_bytes') bytes either way,
    one row per event with what a link to the diff, the page and the user needs (the
    revisions; the wiki's host follows from its name: `meta.domain` is sometimes
    auth.wikimedia.org, the login wiki's). Kept as long as silver keeps events, from ingestion (a
    replayed recording is kept its full time from the day it was loaded). -#}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_page_edit() }}
        and abs(byte_delta) >= {{ var('notable_bytes') }}

),

final as (

    select
        event_time,
        ingested_at,
        event_id,
        wiki,
        type,
        namespace,
        title,
        user,
        user_kind,
        is_minor,
        byte_delta,
        revision_old,
        revision_new
    from silver

)

select * from final
