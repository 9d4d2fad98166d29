{#- TTL parsing shared by the point-in-time join and the feature-group metadata. See _point_in_time.yml. -#}

{% macro fs_ttl_seconds(ttl) -%}
    {#- "2d" / "12h" / "30m" / "90s" / 3600 / "3600" / none -> whole seconds; 0 means unlimited. -#}
    {%- set units = {'d': 86400, 'h': 3600, 'm': 60, 's': 1} -%}
    {%- if ttl is none -%}
        {{ return(0) }}
    {%- elif ttl is integer -%}
        {%- if ttl < 0 -%}
            {{ exceptions.raise_compiler_error(
                "fs_ttl_seconds: invalid ttl " ~ ttl ~ ": a ttl cannot be negative (use 0 or null for unlimited)") }}
        {%- endif -%}
        {{ return(ttl) }}
    {%- elif ttl is string -%}
        {%- set m = modules.re.fullmatch('([0-9]+) *([dhms]?)', ttl | trim | lower) -%}
        {%- if m is none -%}
            {{ exceptions.raise_compiler_error(
                "fs_ttl_seconds: invalid ttl '" ~ ttl ~ "': expected a whole number of seconds or a number with a"
                ~ " unit d, h, m or s (e.g. '2d', '12h', '30m', '90s'), or null/0 for unlimited") }}
        {%- endif -%}
        {{ return((m.group(1) | int) * units.get(m.group(2) or 's')) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "fs_ttl_seconds: invalid ttl " ~ ttl ~ ": expected a string like '2d',"
            ~ " '12h', '30m', '90s', a whole number of seconds, or null/0 for unlimited") }}
    {%- endif -%}
{%- endmacro %}
