-- The feature table counts exactly the sales that staging kept, customer by customer.
with staged as (
    select customer_id, count(*) as n_orders
    from {{ ref('stg_sales') }}
    group by customer_id
)
select features.customer_id, features.n_orders, staged.n_orders as staged_orders
from {{ ref('customer_features') }} as features
left join staged on staged.customer_id = features.customer_id
where features.n_orders <> coalesce(staged.n_orders, 0)
