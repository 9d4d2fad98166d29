{#- The one TTL notation of the project. fs_cli/timeutil.py `parse_ttl` implements the same grammar for Python;
    tests/test_resolved_model.py checks the two agree on generated values (valid and invalid). See _point_in_time.yml. -#}

{% macro fs_ttl_seconds(ttl) -%}
    {#- "2d" / "12h" / "30m" / "90s" / "1w" / 3600 / "3600" / none -> whole seconds; 0 means unlimited. -#}
    {%- set units = {'w': 604800, 'd': 86400, 'h': 3600, 'm': 60, 's': 1} -%}
    {%- if ttl is none or ttl == '' -%}
        {{ return(0) }}
    {%- elif ttl is sameas true or ttl is sameas false -%}
        {{ exceptions.raise_compiler_error("fs_ttl_seconds: invalid ttl " ~ ttl ~ ": a ttl is a duration, not true/false") }}
    {%- elif ttl is integer -%}
        {%- if ttl < 0 -%}
            {{ exceptions.raise_compiler_error(
                "fs_ttl_seconds: invalid ttl " ~ ttl ~ ": a ttl cannot be negative (use 0 or null for unlimited)") }}
        {%- endif -%}
        {{ return(ttl) }}
    {%- elif ttl is string -%}
        {%- set m = modules.re.fullmatch('[ \t\n\r\f\v]*([0-9]+)[ \t\n\r\f\v]*([smhdw]?)[ \t\n\r\f\v]*', ttl) -%}
        {%- if m is none -%}
            {{ exceptions.raise_compiler_error(
                "fs_ttl_seconds: invalid ttl '" ~ ttl ~ "': expected a whole number of seconds or a number with a"
                ~ " unit s, m, h, d or w (e.g. '2d', '12h', '30m', '90s', '1w'), or null/0 for unlimited") }}
        {%- endif -%}
        {{ return((m.group(1) | int) * units.get(m.group(2) or 's')) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            "fs_ttl_seconds: invalid ttl " ~ ttl ~ ": expected a string like '2d',"
            ~ " '12h', '30m', '90s', '1w', a whole number of seconds, or null/0 for unlimited") }}
    {%- endif -%}
{%- endmacro %}
