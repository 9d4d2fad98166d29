-- Rolling transaction aggregates per customer, one row per customer and day while the customer is active
-- (fs_window_aggregate on a daily grid, macros/features/window_aggregate.sql).
-- feature_time is the end of the day, and the windows are closed on the left, [feature_time - w, feature_time):
-- the values describe everything that happened strictly before it, so a transaction at 15:00 never sees an
-- aggregate that includes itself (no leakage).
{%- set double = fs_features_double() %}
{{ fs_window_aggregate(ref('stg_transactions'), 'customer_id', 'transaction_at', [
    {'name': 'tx_count_1d', 'function': 'count', 'window': '1d', 'type': 'bigint'},
    {'name': 'tx_amount_1d', 'function': 'sum', 'column': 'amount', 'window': '1d', 'default': 0, 'type': double},
    {'name': 'tx_count_7d', 'function': 'count', 'window': '7d', 'type': 'bigint'},
    {'name': 'tx_amount_7d', 'function': 'sum', 'column': 'amount', 'window': '7d', 'default': 0, 'type': double},
    {'name': 'tx_max_amount_7d', 'function': 'max', 'column': 'amount', 'window': '7d', 'type': double},
    {'name': 'tx_count_30d', 'function': 'count', 'window': '30d', 'type': 'bigint'},
    {'name': 'tx_amount_30d', 'function': 'sum', 'column': 'amount', 'window': '30d', 'default': 0, 'type': double},
    {'name': 'tx_avg_amount_30d', 'function': 'mean', 'column': 'amount', 'window': '30d', 'type': double},
    {'name': 'online_share_30d', 'function': 'mean', 'column': "case when channel = 'online' then 1.0 else 0.0 end",
     'window': '30d', 'type': double},
], at='1d', closed='left') }}
