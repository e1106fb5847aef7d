-- Late-arriving sales (dated after the extract) must not reach the features.
select sale_id, sale_date
from {{ ref('stg_sales') }}
where sale_date > cast('{{ var("extract_date") }}' as date)
