-- Customers, typed and cleaned: country codes normalised, a missing channel made explicit.
select
    cast(customer_id as bigint) as customer_id,
    cast(signup_date as date) as signup_date,
    upper(trim(country)) as country,
    lower(trim(segment)) as segment,
    coalesce(lower(trim(channel)), 'unknown') as channel,
    trim(age_band) as age_band,
    lower(trim(label)) as label
from {{ source('raw', 'customers') }}
