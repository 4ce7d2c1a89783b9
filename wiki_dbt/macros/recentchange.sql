{#- The parsing of a bronze row into silver's typed columns, in one place: the silver
    model and the invalid-rows view both use it, so "valid" means the same in both. -#}

{#- A bronze row as silver reads it: its keys, and the event parsed once
    (recentchange_fields) as ``e``; with ``keep_raw``, the raw line too. -#}
{% macro parse_bronze(relation, keep_raw=false) -%}
    select
        event_id,
        event_time,
        ingested_at,
        wiki,
        type as type_raw,
        {{ recentchange_fields('raw') }} as e
        {%- if keep_raw %},
        raw
        {%- endif %}
    from {{ relation }}
{%- endmacro %}

{% macro recentchange_fields(raw) -%}
    {#- one JSON parse per event: every field comes out of a single named-tuple extract -#}
    JSONExtract(
        {{ raw }},
        'Tuple(
            meta Tuple(domain String),
            type String,
            namespace Nullable(Int32),
            title Nullable(String),
            user String,
            bot Bool,
            minor Bool,
            patrolled Nullable(Bool),
            length Tuple(old Nullable(Int64), new Nullable(Int64)),
            revision Tuple(old Nullable(UInt64), new Nullable(UInt64)),
            log_type String,
            log_action String
        )'
    )
{%- endmacro %}

{#- why a bronze row cannot become a silver row, or '' when it can. The loader's judge
    (wiki_core/event.py) keeps canaries and events without meta.id / meta.dt out of
    bronze and rejects a wiki that is no wiki's database name (the same rule as 'bad
    wiki' here, for rows that reached bronze before it did); what is left is what needs
    the parsed, typed event. -#}
{% macro invalid_reason(e, wiki, type) -%}
    multiIf(
        {{ wiki }} = '', 'missing wiki',
        not match({{ wiki }}, '^[a-z0-9_]{1,64}$'), 'bad wiki',
        {{ type }} = '', 'missing type',
        {{ e }}.namespace is null, 'missing namespace',
        {{ e }}.title is null, 'missing title',
        ''
    )
{%- endmacro %}

{#- The recentchange type as a name. The stream sends names (edit, new, log,
    categorize, external) or, for types without one, MediaWiki's numeric rc_type as a
    string: "142" is RC_FLOW (StructuredDiscussions). -#}
{% macro rc_type_name(type) -%}
    multiIf(
        {{ type }} in ('edit', 'new', 'log', 'categorize', 'external'), {{ type }},
        {{ type }} = '0', 'edit',
        {{ type }} = '1', 'new',
        {{ type }} = '3', 'log',
        {{ type }} = '5', 'external',
        {{ type }} = '6', 'categorize',
        {{ type }} = '142', 'flow',
        'other'
    )
{%- endmacro %}

{#- bot, anonymous (an IP address, or a temporary account: "~2025-12345-6", which
    replaces IP editing on wikis with IP masking), or registered -#}
{% macro user_kind(user, bot) -%}
    multiIf(
        {{ bot }}, 'bot',
        isIPv4String({{ user }}) or isIPv6String({{ user }}), 'anonymous',
        match({{ user }}, '^~[0-9]{4}-'), 'anonymous',
        'registered'
    )
{%- endmacro %}

{#- bytes added and removed (as a positive number) over a group's byte deltas -#}
{% macro bytes_added(delta='byte_delta') -%}
    toUInt64(sumIf({{ delta }}, {{ delta }} > 0))
{%- endmacro %}

{% macro bytes_removed(delta='byte_delta') -%}
    toUInt64(-sumIf({{ delta }}, {{ delta }} < 0))
{%- endmacro %}

{#- What counts toward a page's edits (top pages): edits and page creations. -#}
{% macro is_page_edit(type='type') -%}
    {{ type }} in ('edit', 'new')
{%- endmacro %}

{#- What counts toward an editor's changes (editor_edits_per_hour's rows): every type
    but categorize, which is a side effect of an edit and would count it twice. -#}
{% macro is_editor_change(type='type') -%}
    {{ type }} != 'categorize'
{%- endmacro %}

{#- An event's minute or hour (``grain``) in UTC, as gold buckets events. -#}
{% macro event_bucket(grain, time='event_time') -%}
    toStartOf{{ grain | capitalize }}(toDateTime({{ time }}, 'UTC'))
{%- endmacro %}

{#- A topKWeighted state (Filtered Space-Saving, with counts and their error) of ``key``
    by ``weight``: the candidates a long window's "top" merges instead of every row.
    ``candidates`` names the dbt var that sizes it. -#}
{% macro top_candidates(key, weight='toUInt64(1)', candidates='top_candidates') -%}
    topKWeightedState({{ var(candidates) }}, {{ var('top_load_factor') }}, 'counts')({{ key }}, {{ weight }})
{%- endmacro %}

{#- The states of ``column`` (top_candidates' topKWeighted states) merged into one state
    per group: a day's candidates from its hours' states. -#}
{% macro top_candidates_merged(column, candidates='top_candidates') -%}
    topKWeightedMergeState({{ var(candidates) }}, {{ var('top_load_factor') }}, 'counts')({{ column }})
{%- endmacro %}

{#- The table settings of a gold table sorted by a key many rows share only a few of (a
    page, an editor), read a few keys at a time: small granules and compression blocks,
    so a key's read does not decompress hundreds of other keys' rows. -#}
{% macro by_key_settings() -%}
    {{ return({} if target.name == 'prod_dev' else {
        'index_granularity': 1024,
        'min_compress_block_size': 4096,
        'max_compress_block_size': 16384,
    }) }}
{%- endmacro %}
