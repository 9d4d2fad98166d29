-- Profile versions the pipeline has seen by the cutoff; erased customers are gone entirely.
-- A corrected version (same customer and updated_at, later ingestion) replaces the original.
with seen as (
    select *
    from {{ ref('customers') }}
    where ingested_at <= cast('{{ var("demo_data_cutoff") }}' as timestamp)
),

latest_ingestion as (
    select *,
        row_number() over (partition by customer_id, updated_at order by ingested_at desc) as rn
    from seen
)

select
    customer_id,
    full_name,
    email,
    phone,
    birth_year,
    country,
    segment,
    credit_limit,
    signup_at,
    updated_at,
    ingested_at
from latest_ingestion
where rn = 1
  and (deleted_at is null or deleted_at > cast('{{ var("demo_data_cutoff") }}' as timestamp))
