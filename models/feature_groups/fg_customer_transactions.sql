-- Rolling transaction aggregates per customer, one row per customer and day while the customer is active.
-- feature_time is the end of the day: the values describe everything that happened strictly before it,
-- so a transaction at 15:00 never sees an aggregate that includes itself (no leakage).
with tx as (
    select
        customer_id,
        amount,
        channel,
        cast(transaction_at as date) as tx_date
    from {{ ref('stg_transactions') }}
),

daily as (
    select
        customer_id,
        tx_date,
        count(*) as n,
        sum(amount) as amount,
        max(amount) as max_amount,
        sum(case when channel = 'online' then 1 else 0 end) as n_online
    from tx
    group by customer_id, tx_date
),

{{ fs_daily_activity_grid('daily', 'customer_id', 'tx_date', 30) }}

select
    grid.customer_id,
    cast(grid.day as timestamp) + interval '1 day' as feature_time,
    cast({{ fs_window_sum('d.n', 'd.tx_date', 'grid.day', 1) }} as bigint) as tx_count_1d,
    cast({{ fs_window_sum('d.amount', 'd.tx_date', 'grid.day', 1) }} as double precision) as tx_amount_1d,
    cast({{ fs_window_sum('d.n', 'd.tx_date', 'grid.day', 7) }} as bigint) as tx_count_7d,
    cast({{ fs_window_sum('d.amount', 'd.tx_date', 'grid.day', 7) }} as double precision) as tx_amount_7d,
    cast(max(case when d.tx_date > grid.day - 7 then d.max_amount end) as double precision) as tx_max_amount_7d,
    cast({{ fs_window_sum('d.n', 'd.tx_date', 'grid.day', 30) }} as bigint) as tx_count_30d,
    cast({{ fs_window_sum('d.amount', 'd.tx_date', 'grid.day', 30) }} as double precision) as tx_amount_30d,
    cast(sum(d.amount) / sum(d.n) as double precision) as tx_avg_amount_30d,
    {{ fs_ratio('sum(d.n_online)', 'sum(d.n)') }} as online_share_30d
from grid
inner join daily as d
    on d.customer_id = grid.customer_id
    and d.tx_date > grid.day - 30
    and d.tx_date <= grid.day
group by grid.customer_id, grid.day
