select merchant_id, merchant_name, category, country
from {{ ref('merchants') }}
