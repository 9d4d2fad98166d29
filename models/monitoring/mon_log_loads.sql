{#- Which log files fs has loaded, up to which byte (the load watermark). Its pre-hook creates the fs_meta log
    tables when no log was ever loaded, so every monitoring model builds on an empty store; the other models
    depend on this one so the tables exist before them. -#}
{{ config(schema='monitoring', pre_hook="{{ fs_inference_log_tables() }}") }}
select kind, file, max(bytes_loaded) as bytes_loaded, max(loaded_at) as last_loaded_at
from {{ source('fs_inference_logs', 'inference_log_files') }}
group by kind, file
