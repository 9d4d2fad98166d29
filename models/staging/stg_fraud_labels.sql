-- The label spine: one row per transaction whose outcome is known by the cutoff.
-- Its timestamp is the transaction time: features must be as of the moment the card was swiped.
select
    t.transaction_id,
    t.customer_id,
    t.merchant_id,
    t.amount,
    t.channel,
    t.transaction_at,
    l.is_fraud,
    l.labeled_at
from {{ ref('stg_transactions') }} as t
inner join {{ ref('fraud_labels') }} as l using (transaction_id)
where l.labeled_at <= cast('{{ var("demo_data_cutoff") }}' as timestamp)
