{#- The loads gold will show once load `load_id` is published (the ledger's `done`):
    the visible ones, with `load_id` in place of the file it replaces. Used inside
    parameterized views, where `load_id` is the parameter `{load_id:UInt64}`. -#}
{% macro dumps_published_with(load_id) -%}
    select load_id from {{ source('dumps', 'dumps_visible') }}
    where name not in (
        select name from {{ source('dumps', 'dumps_files') }} where load_id = {{ load_id }}
    )
    union all
    select {{ load_id }} as load_id
{%- endmacro %}
