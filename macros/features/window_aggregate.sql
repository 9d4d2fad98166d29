{#- fs_window_aggregate: time-window aggregations per entity, evaluated at each event time or on a time grid, with an
    optional lag. Documented in macros/features/_features.yml (arguments, window grammar, boundaries).

    Semantics (the contract tests/test_window_aggregate.py checks against a brute-force reference):
      - an evaluation point is (entity, t); the window of an aggregation of length w ends at u = t - lag;
      - closed='right' (default): events with u - w < event_time <= u, i.e. the window is (t - lag - w, t - lag];
        closed='left': u - w <= event_time < u, i.e. [t - lag - w, t - lag) (the event at u itself is not seen);
      - no event after u is ever counted (no leakage), whatever the aggregation;
      - NULL values are ignored by every aggregation (count('*') counts events); an empty window gives count 0 and
        NULL for the others (or the aggregation's `default`).

    The SQL is portable (standard joins, CASE, aggregates and one window function); only interval arithmetic and the
    grid's time series differ between warehouses and are dispatched (namespace feature_store). -#}

{% macro fs_window_aggregate(relation, entity, timestamp, aggregations, at='events', lag=none, closed='right',
                             time_column='feature_time', grid_origin=none) -%}
    {{ return(adapter.dispatch('fs_window_aggregate', 'feature_store')(
        relation, entity, timestamp, aggregations, at, lag, closed, time_column, grid_origin)) }}
{%- endmacro %}


{% macro fs_window_seconds(duration, what='window') -%}
{#- '30m' / '6h' / '7d' -> seconds (an integer). A positive integer followed by m (minutes), h (hours) or d (days);
    anything else fails at compile time. -#}
    {%- set m = modules.re.match('^\s*([0-9]+)\s*([mhd])\s*$', (duration | string)) -%}
    {%- if duration is none or not m or (m.group(1) | int) <= 0 -%}
        {{ exceptions.raise_compiler_error("fs_window_aggregate: " ~ what ~ " '" ~ duration ~ "' is not a duration; "
            ~ "write a positive integer followed by m (minutes), h (hours) or d (days), e.g. '30m', '6h', '7d'") }}
    {%- endif -%}
    {{ return((m.group(1) | int) * {'m': 60, 'h': 3600, 'd': 86400}[m.group(2)]) }}
{%- endmacro %}


{% macro fs_wa_aggregations(aggregations) -%}
{#- Validated aggregation specs: [{name, function, column, window_seconds, default, type}] (internal). -#}
    {%- set known = {'sum': 'sum', 'count': 'count', 'mean': 'mean', 'avg': 'mean', 'min': 'min', 'max': 'max',
                     'count_distinct': 'count_distinct', 'last': 'last'} -%}
    {%- if aggregations is string or aggregations is mapping or not aggregations -%}
        {{ exceptions.raise_compiler_error("fs_window_aggregate: aggregations must be a non-empty list of "
            ~ "{name, function, column, window} mappings") }}
    {%- endif -%}
    {%- set out = [] -%}
    {%- set names = [] -%}
    {%- for a in aggregations -%}
        {%- if a is not mapping or not a.get('name') or not a.get('function') or not a.get('window') -%}
            {{ exceptions.raise_compiler_error("fs_window_aggregate: aggregation " ~ a ~ " needs name, function and "
                ~ "window (and column, except count)") }}
        {%- endif -%}
        {%- set fn = known.get(a['function'] | lower) -%}
        {%- if fn is none -%}
            {{ exceptions.raise_compiler_error("fs_window_aggregate: unknown function '" ~ a['function'] ~ "' in "
                ~ a['name'] ~ "; use one of sum, count, mean (avg), min, max, count_distinct, last") }}
        {%- endif -%}
        {%- set column = a.get('column') or ('*' if fn == 'count' else none) -%}
        {%- if column is none or (column == '*' and fn != 'count') -%}
            {{ exceptions.raise_compiler_error("fs_window_aggregate: " ~ a['name'] ~ " (" ~ fn ~ ") needs a column") }}
        {%- endif -%}
        {%- if (a['name'] | lower) in names -%}
            {{ exceptions.raise_compiler_error("fs_window_aggregate: two aggregations are named " ~ a['name']) }}
        {%- endif -%}
        {%- do names.append(a['name'] | lower) -%}
        {%- do out.append({'name': a['name'], 'function': fn, 'column': column,
                           'window_seconds': feature_store.fs_window_seconds(a['window'], a['name'] ~ ' window'),
                           'default': a.get('default'), 'type': a.get('type')}) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}


{% macro default__fs_window_aggregate(relation, entity, timestamp, aggregations, at, lag, closed, time_column,
                                      grid_origin) -%}
    {%- set keys = [entity] if entity is string else entity -%}
    {%- set aggs = feature_store.fs_wa_aggregations(aggregations) -%}
    {%- set lag_s = 0 if lag in (none, 0, '0', '') else feature_store.fs_window_seconds(lag, 'lag') -%}
    {%- if closed not in ('right', 'left') -%}
        {{ exceptions.raise_compiler_error("fs_window_aggregate: closed must be 'right' ((t-w, t]) or 'left' "
            ~ "([t-w, t)), got '" ~ closed ~ "'") }}
    {%- endif -%}
    {%- set on_grid = at != 'events' -%}
    {%- set step_s = feature_store.fs_window_seconds(at, "at (use 'events' or a grid step)") if on_grid else none -%}
    {%- set ns = namespace(longest=0) -%}
    {%- for a in aggs %}{% set ns.longest = [ns.longest, a.window_seconds] | max %}{% endfor -%}
    {#- event e is inside the window of length w ending at u = t - lag: lower bound, then upper bound. -#}
    {%- set lower_op = '>' if closed == 'right' else '>=' -%}
    {%- set upper_op = '<=' if closed == 'right' else '<' -%}
    {%- set upper = feature_store.fs_wa_minus_seconds('p.fs_wa_t', lag_s) -%}
with fs_wa_events as (
    select
        {%- for k in keys %}
        {{ k }},
        {%- endfor %}
        {{ timestamp }} as fs_wa_ts
        {%- for a in aggs if a.column != '*' %},
        {{ a.column }} as fs_wa_v{{ loop.index0 }}
        {%- endfor %}
    from {{ relation }}
    where {{ timestamp }} is not null
    {%- for k in keys %}
      and {{ k }} is not null
    {%- endfor %}
),

fs_wa_points as (
{%- if not on_grid %}
    {#- One evaluation point per entity and distinct event time (ties share a point). -#}
    select distinct {% for k in keys %}{{ k }}, {% endfor %}fs_wa_ts as fs_wa_t
    from fs_wa_events
{%- else %}
    {#- Grid points origin + k * step, per entity, from its first event (+ lag) to its last (+ lag + longest
        window); never past the first point whose window sees the latest event of the whole relation. -#}
    select {% for k in keys %}e.{{ k }}, {% endfor %}g.fs_wa_t
    from (
        select {% for k in keys %}{{ k }}, {% endfor %}min(fs_wa_ts) as fs_wa_first, max(fs_wa_ts) as fs_wa_last
        from fs_wa_events
        group by {% for k in keys %}{{ k }}{{ ', ' if not loop.last }}{% endfor %}
    ) as e
    inner join (
        {{ feature_store.fs_wa_time_grid(
            grid_origin if grid_origin is not none else 'cast(cast((select min(fs_wa_ts) from fs_wa_events) as date) as timestamp)',
            feature_store.fs_wa_plus_seconds('(select max(fs_wa_ts) from fs_wa_events)', lag_s + step_s),
            step_s) }}
    ) as g
        on g.fs_wa_t >= {{ feature_store.fs_wa_plus_seconds('e.fs_wa_first', lag_s) }}
        and g.fs_wa_t <= {{ feature_store.fs_wa_plus_seconds('e.fs_wa_last', lag_s + ns.longest) }}
    where {{ feature_store.fs_wa_minus_seconds('g.fs_wa_t', step_s + lag_s) }}
        {{ '<' if closed == 'right' else '<=' }} (select max(fs_wa_ts) from fs_wa_events)
{%- endif %}
),

fs_wa_joined as (
    {#- Every point with the events of its longest window (events mode keeps points whose window is empty). -#}
    select
        {%- for k in keys %}
        p.{{ k }},
        {%- endfor %}
        p.fs_wa_t,
        e.fs_wa_ts
        {%- for a in aggs if a.column != '*' %},
        e.fs_wa_v{{ loop.index0 }}
        {%- endfor %}
        {%- for a in aggs if a.function == 'last' %},
        {#- The time of the latest non-NULL value in this aggregation's window, per point. -#}
        max(case when e.fs_wa_ts {{ lower_op }} {{ feature_store.fs_wa_minus_seconds('p.fs_wa_t', lag_s + a.window_seconds) }}
                  and e.fs_wa_v{{ feature_store.fs_wa_value_index(aggs, a) }} is not null then e.fs_wa_ts end)
            over (partition by {% for k in keys %}p.{{ k }}, {% endfor %}p.fs_wa_t) as fs_wa_last_ts{{ loop.index0 }}
        {%- endfor %}
    from fs_wa_points as p
    {{ 'inner' if on_grid else 'left' }} join fs_wa_events as e
        on {% for k in keys %}e.{{ k }} = p.{{ k }}
        and {% endfor %}e.fs_wa_ts {{ lower_op }} {{ feature_store.fs_wa_minus_seconds('p.fs_wa_t', lag_s + ns.longest) }}
        and e.fs_wa_ts {{ upper_op }} {{ upper }}
)

select
    {%- for k in keys %}
    {{ k }},
    {%- endfor %}
    fs_wa_t as {{ time_column }}
    {%- set lasts = namespace(i=0) -%}
    {%- for a in aggs %},
    {%- set inside = 'fs_wa_ts ' ~ lower_op ~ ' ' ~ feature_store.fs_wa_minus_seconds('fs_wa_t', lag_s + a.window_seconds) -%}
    {%- set v = 'fs_wa_v' ~ feature_store.fs_wa_value_index(aggs, a) if a.column != '*' else '1' -%}
    {%- if a.function == 'sum' -%}
        {%- set expr = 'sum(case when ' ~ inside ~ ' then ' ~ v ~ ' end)' -%}
    {%- elif a.function == 'count' -%}
        {%- set expr = 'count(case when ' ~ inside ~ ' then ' ~ v ~ ' end)' -%}
    {%- elif a.function == 'mean' -%}
        {%- set expr = feature_store.fs_wa_mean('case when ' ~ inside ~ ' then ' ~ v ~ ' end') -%}
    {%- elif a.function in ('min', 'max') -%}
        {%- set expr = a.function ~ '(case when ' ~ inside ~ ' then ' ~ v ~ ' end)' -%}
    {%- elif a.function == 'count_distinct' -%}
        {%- set expr = 'count(distinct case when ' ~ inside ~ ' then ' ~ v ~ ' end)' -%}
    {%- else -%}
        {#- last: the value at the latest time in the window; ties on that time -> the largest value. -#}
        {%- set expr = 'max(case when fs_wa_ts = fs_wa_last_ts' ~ lasts.i ~ ' then ' ~ v ~ ' end)' -%}
        {%- set lasts.i = lasts.i + 1 -%}
    {%- endif -%}
    {%- if a.default is not none -%}{%- set expr = 'coalesce(' ~ expr ~ ', ' ~ a.default ~ ')' -%}{%- endif -%}
    {%- if a.type -%}{%- set expr = 'cast(' ~ expr ~ ' as ' ~ a.type ~ ')' -%}{%- endif %}
    {{ expr }} as {{ a.name }}
    {%- endfor %}
from fs_wa_joined
group by {% for k in keys %}{{ k }}, {% endfor %}fs_wa_t
{%- endmacro %}


{% macro fs_wa_value_index(aggs, agg) -%}
{#- The index of `agg`'s value column among the aggregations that read a column (internal). -#}
    {%- set ns = namespace(i=0, found=none) -%}
    {%- for a in aggs if a.column != '*' -%}
        {%- if a.name == agg.name %}{% set ns.found = ns.i %}{% endif -%}
        {%- set ns.i = ns.i + 1 -%}
    {%- endfor -%}
    {{ return(ns.found) }}
{%- endmacro %}


{#- Dispatched pieces: interval arithmetic with a literal number of seconds, and a series of grid times. -#}

{% macro fs_wa_minus_seconds(expr, seconds) -%}
    {%- if seconds == 0 %}{{ return(expr) }}{% endif -%}
    {{ return(feature_store.fs_pit_minus_seconds('(' ~ expr ~ ')', seconds)) }}
{%- endmacro %}

{% macro fs_wa_plus_seconds(expr, seconds) -%}
    {%- if seconds == 0 %}{{ return(expr) }}{% endif -%}
    {{ return(adapter.dispatch('fs_wa_plus_seconds', 'feature_store')(expr, seconds)) }}
{%- endmacro %}
{#- Not dbt.dateadd (see fs_pit_minus_seconds: dbt-spark's drops fractions of a second). -#}
{% macro default__fs_wa_plus_seconds(expr, seconds) -%}({{ expr }} + interval '{{ seconds }} seconds'){%- endmacro %}
{% macro spark__fs_wa_plus_seconds(expr, seconds) -%}({{ expr }} + interval {{ seconds }} seconds){%- endmacro %}

{% macro fs_wa_mean(expr) -%}
{#- The mean of the non-NULL values of expr (NULL when there are none). -#}
    {{ return(adapter.dispatch('fs_wa_mean', 'feature_store')(expr)) }}
{%- endmacro %}
{% macro default__fs_wa_mean(expr) -%}avg({{ expr }}){%- endmacro %}
{#- DuckDB: the exact sum divided by the count (`/` is a float division there, and x / 0 is NULL). DuckDB's avg() of a
    DECIMAL can differ from sum / count in the last bit, and sum / count is what hand-written features compute. -#}
{% macro duckdb__fs_wa_mean(expr) -%}(sum({{ expr }}) / count({{ expr }})){%- endmacro %}
{#- Spark: avg() of a DECIMAL is a DECIMAL whose scale is the input's + 4 (avg of 1.0/0.0 flags came out as 0.35135
    for 0.351351...); the exact sum as a double divided by the count, as on DuckDB (NULL for no values). -#}
{% macro spark__fs_wa_mean(expr) -%}(cast(sum({{ expr }}) as double) / nullif(count({{ expr }}), 0)){%- endmacro %}

{% macro fs_wa_time_grid(start, stop, step_seconds) -%}
{#- A relation with one column fs_wa_t: start, start + step, ... up to stop (inclusive). -#}
    {{ return(adapter.dispatch('fs_wa_time_grid', 'feature_store')(start, stop, step_seconds)) }}
{%- endmacro %}
{% macro default__fs_wa_time_grid(start, stop, step_seconds) -%}
select cast(gs.d as timestamp) as fs_wa_t
        from generate_series(cast({{ start }} as timestamp), cast({{ stop }} as timestamp),
                             interval '{{ step_seconds }} seconds') as gs(d)
{%- endmacro %}
{% macro spark__fs_wa_time_grid(start, stop, step_seconds) -%}
select explode(sequence(cast({{ start }} as timestamp), cast({{ stop }} as timestamp),
                                interval {{ step_seconds }} seconds)) as fs_wa_t
{%- endmacro %}
