{#- No two rows share the same values of these columns. -#}
{% test unique_combination_of_columns(model, columns) %}

select {{ columns | join(', ') }}, count() as n
from {{ model }}
group by {{ columns | join(', ') }}
having n > 1

{% endtest %}
