-- A numeric column whose values must lie in [min_value, max_value] (either bound may be left out).
-- The package reads these bounds into the feature contract: the service refuses values outside.
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where 1 = 0
{%- if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
{%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
{% endtest %}
