-- Rolling activity per merchant (a second entity), one row per merchant and day while it is active.
with daily as (
    select
        merchant_id,
        cast(transaction_at as date) as tx_date,
        count(*) as n,
        sum(amount) as amount,
        sum(case when channel = 'online' then 1 else 0 end) as n_online
    from {{ ref('stg_transactions') }}
    group by merchant_id, cast(transaction_at as date)
),

{{ fs_daily_activity_grid('daily', 'merchant_id', 'tx_date', 7) }}

select
    grid.merchant_id,
    cast(grid.day as timestamp) + interval '1 day' as feature_time,
    cast({{ fs_window_sum('d.n', 'd.tx_date', 'grid.day', 7) }} as bigint) as merchant_tx_count_7d,
    cast(sum(d.amount) / sum(d.n) as double precision) as merchant_avg_amount_7d,
    cast(sum(d.n_online) as double precision) / sum(d.n) as merchant_online_share_7d
from grid
inner join daily as d
    on d.merchant_id = grid.merchant_id
    and d.tx_date > grid.day - 7
    and d.tx_date <= grid.day
group by grid.merchant_id, grid.day
