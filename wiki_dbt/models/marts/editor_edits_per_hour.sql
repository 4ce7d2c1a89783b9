{{ config(order_by='(hour, wiki, user_kind, user)') }}

{#- One definition of an edit on every page of the dashboard: `edits` counts edits and
    page creations (`edit`, `new`, as page_edits_per_hour and the readers' edits do);
    log entries are `actions`; `changes` counts every type but `categorize` (a side effect
    of an edit). -#}

with

silver as (

    select * from {{ ref('wiki') }}
    where {{ is_editor_change() }}

),

final as (

    select
        {{ event_bucket('hour') }} as hour,
        wiki,
        user_kind,
        user,
        countIf({{ is_page_edit() }}) as edits,
        countIf(type = 'log') as actions,
        count() as changes,
        {{ bytes_added() }} as bytes_added,
        {{ bytes_removed() }} as bytes_removed
    from silver
    group by hour, wiki, user_kind, user

)

select * from final
