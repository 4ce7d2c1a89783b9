{#- Reconciliation looks at closed windows: what happened (event time) and arrived
    (ingestion time) before this instant, so an insert in flight does not count. -#}
{% macro closed_before() -%}
    (now64(3) - interval {{ var('reconcile_lag_minutes') }} minute)
{%- endmacro %}

{#- The rows where a gold table's sums differ from counting silver directly, per key;
    nothing when they agree. Over closed hours that silver holds completely
    (silver_holds_hour, macros/retention.sql): gold keeps every hour, silver only its
    retention. -#}
{% macro gold_differs_from_silver(model_name, keys, bucket_expressions, measure, silver_measure, silver_filter='1') -%}
    select
        '{{ model_name }}' as model,
        concatWithSeparator(' | ', {% for key in keys %}toString({{ key }}){{ ', ' if not loop.last }}{% endfor %}) as key,
        gold_value,
        silver_value
    from (
        select {{ keys | join(', ') }}, sum({{ measure }}) as gold_value
        from {{ ref(model_name) }}
        where {{ keys[0] }} < toStartOfHour({{ closed_before() }})
          and {{ silver_holds_hour('toStartOfHour(' ~ keys[0] ~ ')') }}
        group by {{ keys | join(', ') }}
    ) as g
    full outer join (
        select
            {% for key in keys %}{{ bucket_expressions[loop.index0] }} as {{ key }}, {% endfor %}
            {{ silver_measure }} as silver_value
        from {{ ref('wiki') }}
        where {{ silver_filter }}
        group by {{ keys | join(', ') }}
        having {{ keys[0] }} < toStartOfHour({{ closed_before() }})
           and {{ silver_holds_hour('toStartOfHour(' ~ keys[0] ~ ')') }}
    ) as s
    using ({{ keys | join(', ') }})
    where gold_value != silver_value
{%- endmacro %}

{#- The closed hours where a gold table sorted for lookups (``copy``) differs from the
    gold table it is fed by (``source``): per hour, the sum of ``measure`` and a checksum
    of every key (``keys``) weighted by it, so a row under another key differs even when
    the sums agree. Closed hours only: an insert reaches a source and its copy as two
    parts, committed one after the other. Nothing when they agree. -#}
{% macro sorted_copy_differs(copy, source, measure, keys) -%}
    select '{{ copy }}' as model, hour, s.n as source_n, c.n as copy_n
    from ({{ hourly_key_checksum(source, measure, keys) }}) as s
    full outer join ({{ hourly_key_checksum(copy, measure, keys) }}) as c
    using (hour)
    where s.n != c.n or s.checksum != c.checksum
{%- endmacro %}

{% macro hourly_key_checksum(model_name, measure, keys) -%}
    select
        hour,
        sum({{ measure }}) as n,
        sum({{ measure }} * cityHash64({{ keys | join(', ') }})) as checksum
    from {{ ref(model_name) }}
    where hour < toStartOfHour({{ closed_before() }})
    group by hour
{%- endmacro %}
