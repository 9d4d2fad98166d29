-- The customer's profile as a state that changes over time: one row per profile version, its event time
-- being when the change happened. The latest row per customer is the current state (what is served online);
-- older rows let training sets see the profile as it was. PII columns of staging are not carried over.
select
    customer_id,
    updated_at as profile_updated_at,
    country,
    segment,
    cast(credit_limit as {{ feature_store.fs_features_double() }}) as credit_limit,
    cast(extract(year from updated_at) as integer) - birth_year as age_years,
    cast(cast(updated_at as date) - cast(signup_at as date) as integer) as tenure_days
from {{ ref('stg_customers') }}
