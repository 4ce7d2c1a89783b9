{{ config(order_by='(user, wiki, hour, user_kind)',
          settings=by_key_settings()) }}

{#- editor_edits_per_hour sorted by editor, as page_edits_by_page is by page: the exact
    counts of the top editors' candidates read those editors' granules only. -#}

with

hourly as (

    select * from {{ ref('editor_edits_per_hour') }}

),

final as (

    select
        hour, wiki, user_kind, user, edits, actions, changes, bytes_added, bytes_removed
    from hourly

)

select * from final
