-- Transactions seen by the cutoff, one row per transaction_id (the latest correction wins),
-- without customers who asked for erasure.
with seen as (
    select *
    from {{ ref('transactions') }}
    where ingested_at <= cast('{{ var("demo_data_cutoff") }}' as timestamp)
),

latest as (
    select *,
        row_number() over (partition by transaction_id order by ingested_at desc) as rn
    from seen
)

select
    latest.transaction_id,
    latest.customer_id,
    latest.merchant_id,
    cast(latest.amount as decimal(18, 2)) as amount,
    latest.channel,
    latest.transaction_at,
    latest.ingested_at
from latest
where latest.rn = 1
  and latest.customer_id in (select customer_id from {{ ref('stg_customers') }})
