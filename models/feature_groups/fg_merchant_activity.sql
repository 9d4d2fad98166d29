-- Rolling activity per merchant (a second entity), one row per merchant and day while it is active
-- (fs_window_aggregate on a daily grid; windows [feature_time - 7d, feature_time), as fg_customer_transactions).
{%- set double = fs_features_double() %}
{{ fs_window_aggregate(ref('stg_transactions'), 'merchant_id', 'transaction_at', [
    {'name': 'merchant_tx_count_7d', 'function': 'count', 'window': '7d', 'type': 'bigint'},
    {'name': 'merchant_avg_amount_7d', 'function': 'mean', 'column': 'amount', 'window': '7d', 'type': double},
    {'name': 'merchant_online_share_7d', 'function': 'mean',
     'column': "case when channel = 'online' then 1.0 else 0.0 end", 'window': '7d', 'type': double},
], at='1d', closed='left') }}
