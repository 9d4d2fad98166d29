-- Feature view: every column comes from the declaration in _feature_views.yml (config.meta.fs.feature_view).
-- The depends_on lines only tell plain `dbt build` to build this view after its spine and snapshots.
-- depends_on: {{ ref('stg_fraud_labels') }}
-- depends_on: {{ ref('fg_customer_transactions_snapshot') }}
-- depends_on: {{ ref('fg_customer_profile_snapshot') }}
-- depends_on: {{ ref('fg_merchant_activity_snapshot') }}
{{ feature_store.fs_feature_view() }}
