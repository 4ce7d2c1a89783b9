{#- Every gold table's sums equal counting silver directly, key by key, for the hours
    that have closed and that silver still holds whole (its retention). Returns the keys
    where they differ. -#}

{%- set minute = event_bucket('minute') -%}
{%- set hour = event_bucket('hour') -%}

{{ gold_differs_from_silver('events_per_minute', ['minute', 'user_kind'], [minute, 'user_kind'], 'events', 'count()') }}
union all
{{ gold_differs_from_silver('events_per_hour', ['hour', 'user_kind'], [hour, 'user_kind'], 'events', 'count()') }}
union all
{{ gold_differs_from_silver('events_per_minute_wiki', ['minute', 'wiki'], [minute, 'wiki'], 'events', 'count()') }}
union all
{{ gold_differs_from_silver('edits_per_minute_wiki', ['minute', 'wiki', 'user_kind'], [minute, 'wiki', 'user_kind'], 'edits', 'count()', is_page_edit()) }}
union all
{{ gold_differs_from_silver('events_per_hour_wiki', ['hour', 'wiki', 'type'], [hour, 'wiki', 'type'], 'events', 'count()') }}
union all
{{ gold_differs_from_silver('events_per_hour_wiki', ['hour', 'wiki'], [hour, 'wiki'], 'bytes_added', bytes_added()) }}
union all
{{ gold_differs_from_silver('events_per_hour_wiki', ['hour', 'wiki'], [hour, 'wiki'], 'bytes_removed', bytes_removed()) }}
union all
{{ gold_differs_from_silver('page_edits_per_hour', ['hour', 'wiki', 'title'], [hour, 'wiki', 'title'], 'edits', 'count()', is_page_edit()) }}
union all
{{ gold_differs_from_silver('editor_edits_per_hour', ['hour', 'wiki', 'user'], [hour, 'wiki', 'user'], 'edits', 'countIf(' ~ is_page_edit() ~ ')', is_editor_change()) }}
union all
{{ gold_differs_from_silver('editor_edits_per_hour', ['hour', 'wiki', 'user'], [hour, 'wiki', 'user'], 'actions', "countIf(type = 'log')", is_editor_change()) }}
union all
{{ gold_differs_from_silver('editor_edits_per_hour', ['hour', 'wiki', 'user'], [hour, 'wiki', 'user'], 'changes', 'count()', is_editor_change()) }}
