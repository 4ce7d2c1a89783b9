{#- Each gold table sorted for the dashboard's lookups (by page, by editor, by wiki) holds
    its source's rows: per closed hour, the same sums and the same checksum of every key
    with its count (macros/reconcile.sql). Gold against gold: silver's retention does not
    touch it. -#}

{{ sorted_copy_differs('page_edits_by_page', 'page_edits_per_hour', 'edits', ['wiki', 'user_kind', 'namespace', 'title']) }}
union all
{{ sorted_copy_differs('editor_edits_by_editor', 'editor_edits_per_hour', 'changes', ['wiki', 'user_kind', 'user']) }}
union all
{{ sorted_copy_differs('wiki_events_per_hour', 'events_per_hour_wiki', 'events', ['wiki', 'user_kind']) }}
