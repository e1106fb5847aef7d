-- One row per customer: what the model sees (features), what it learns (label), and what fairness
-- checks slice by (age_band). Columns and types are fixed by the contract in customer_features.yml.
with orders as (
    select
        customer_id,
        count(*) as n_orders,
        sum(amount) as total_amount,
        avg(amount) as avg_amount,
        max(amount) as max_amount,
        avg(case when returned then 1.0 else 0.0 end) as return_rate,
        avg(payment_delay_days) as avg_payment_delay_days,
        max(sale_date) as last_order_date,
        count(distinct product_category) as n_categories
    from {{ ref('stg_sales') }}
    group by customer_id
),

extract as (
    select cast('{{ var("extract_date") }}' as date) as extract_date
)

select
    cast(customers.customer_id as bigint) as customer_id,
    cast(customers.country as varchar) as country,
    cast(customers.segment as varchar) as segment,
    cast(customers.channel as varchar) as channel,
    cast(customers.age_band as varchar) as age_band,
    cast(extract.extract_date - customers.signup_date as integer) as tenure_days,
    cast(coalesce(orders.n_orders, 0) as integer) as n_orders,
    cast(coalesce(orders.total_amount, 0) as double precision) as total_amount,
    cast(orders.avg_amount as double precision) as avg_amount,
    cast(coalesce(orders.max_amount, 0) as double precision) as max_amount,
    cast(coalesce(orders.return_rate, 0) as double precision) as return_rate,
    cast(coalesce(orders.avg_payment_delay_days, 0) as double precision) as avg_payment_delay_days,
    cast(extract.extract_date - orders.last_order_date as integer) as days_since_last_order,
    cast(coalesce(orders.n_categories, 0) as integer) as n_categories,
    cast(customers.label as varchar) as label
from {{ ref('stg_customers') }} as customers
cross join extract
left join orders on orders.customer_id = customers.customer_id
