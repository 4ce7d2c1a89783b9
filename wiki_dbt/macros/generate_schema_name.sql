{#- A model's +schema is its ClickHouse database as written (silver, gold), not
    "<target schema>_silver": analysts and the dashboard address them by these names.
    Target prod_dev (an analyst's build against production, profiles.yml): every model
    goes into the analyst's own database, dev_NAME, the only one they may write. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none or target.name == 'prod_dev' -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
