-- Sales known at the extract date: rows that arrived later are left for the next extract.
select
    cast(sale_id as bigint) as sale_id,
    cast(customer_id as bigint) as customer_id,
    cast(sale_date as date) as sale_date,
    cast(amount as double precision) as amount,
    lower(trim(product_category)) as product_category,
    cast(returned as boolean) as returned,
    cast(payment_delay_days as integer) as payment_delay_days
from {{ source('raw', 'sales') }}
where cast(sale_date as date) <= cast('{{ var("extract_date") }}' as date)
