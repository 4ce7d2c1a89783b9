{#- A model's +schema is its ClickHouse database as written (silver, gold), not
    "<target schema>_silver": analysts and the dashboard address them by these names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
