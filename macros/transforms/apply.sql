{#- Apply fitted model-dependent transformations in SQL (training datasets, batch scoring).
    The statistics come from fs_cli.transforms.fit (stored with a training dataset version). This file is the one
    definition of the transformations' SQL: fs_cli renders these same macros with plain Jinja
    (fs_cli/transforms/macros.py) to fit statistics and to transform training datasets and batch-scoring frames,
    so only plain Jinja, `return`, `adapter.dispatch`, `feature_store.`, `exceptions.raise_compiler_error`,
    `fromjson` and `execute` may be used here (plus `adapter.get_columns_in_relation` for a dbt Relation).
    The per-row path fs_cli/transforms/apply_row.py mirrors this arithmetic bit for bit
    (tests/test_transforms_parity.py). Definitions of every function: macros/transforms/_transforms.yml. -#}

{% macro fs_apply_transformations(relation, transformations=none, stats=none, columns=none) -%}
    {{ return(adapter.dispatch('fs_apply_transformations', 'feature_store')(relation, transformations, stats, columns)) }}
{%- endmacro %}

{% macro default__fs_apply_transformations(relation, transformations, stats, columns) -%}
    {%- if not execute -%}
        {#- parse time: statistics read with run_query (fs_td_statistics) are not available yet -#}
        {{ return('select * from ' ~ relation) }}
    {%- endif -%}
    {%- if stats is none -%}
        {{ exceptions.raise_compiler_error("fs_apply_transformations: no fitted statistics given; fit them with fs_cli.transforms.fit on the train split (a training dataset version stores them)") }}
    {%- endif -%}
    {%- if stats is string -%}{%- set stats = fromjson(stats) -%}{%- endif -%}
    {%- if transformations is not none -%}
        {%- set normalized = [] -%}
        {%- for d in transformations -%}
            {%- do normalized.append({'feature': d.get('feature'), 'fn': d.get('fn'), 'args': d.get('args') or {}, 'output': d.get('output') or d.get('feature')}) -%}
        {%- endfor -%}
        {%- if normalized != stats['declarations'] -%}
            {{ exceptions.raise_compiler_error("fs_apply_transformations: the fitted statistics were computed for other transformation declarations than the feature view's; create a new training dataset version so they are refitted") }}
        {%- endif -%}
    {%- endif -%}
    {%- if columns is none and relation is not string -%}
        {#- a dbt Relation (e.g. ref('fv_...') for batch scoring): its real columns, not the TD's -#}
        {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
    {%- endif -%}
    {%- set cols = columns if columns is not none else stats['input_columns'] -%}
    {%- set by_output = {} -%}
    {%- for c in stats['chains'] -%}
        {%- if c['feature'] not in cols -%}
            {{ exceptions.raise_compiler_error("fs_apply_transformations: input column " ~ c['feature'] ~ " missing from the relation's columns") }}
        {%- endif -%}
        {%- do by_output.update({c['output']: c}) -%}
    {%- endfor -%}
    {%- set items = [] -%}
    {%- for col in cols -%}
        {%- if col in by_output -%}
            {%- do items.extend(feature_store.fs_tf_chain_items(by_output[col])) -%}
        {%- else -%}
            {%- do items.append([col, feature_store.fs_tf_ident(col)]) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for c in stats['chains'] if c['output'] not in cols -%}
        {%- do items.extend(feature_store.fs_tf_chain_items(c)) -%}
    {%- endfor -%}
select
    {% for name, expr in items -%}
    {{ expr }}{% if expr != feature_store.fs_tf_ident(name) %} as {{ feature_store.fs_tf_ident(name) }}{% endif %}{% if not loop.last %},
    {% endif %}
    {%- endfor %}
from {{ relation }}
{%- endmacro %}

{#- ---- helpers (also rendered by fs_cli/transforms/sql.py to fit the statistics, step by step) ------------------ -#}

{#- Identifiers and text literals are spelled per engine: Spark quotes names with backticks, and reads '' inside a
    literal as two adjacent literals (silently dropping the quote) where SQL's standard doubles it. -#}
{% macro fs_tf_ident(name) -%}
    {{ return(adapter.dispatch('fs_tf_ident', 'feature_store')(name)) }}
{%- endmacro %}
{% macro default__fs_tf_ident(name) -%}
    {{ return('"' ~ (name | replace('"', '""')) ~ '"') }}
{%- endmacro %}
{% macro spark__fs_tf_ident(name) -%}
    {{ return('`' ~ (name | replace('`', '``')) ~ '`') }}
{%- endmacro %}

{% macro fs_tf_num(v) -%}
    {#- a fitted number that round-trips bit for bit (a bare 0.1 would be a DECIMAL literal in DuckDB) -#}
    {{ return("cast('" ~ (v | float) ~ "' as " ~ feature_store.fs_type_double() ~ ")") }}
{%- endmacro %}

{% macro fs_tf_text(s) -%}
    {{ return(adapter.dispatch('fs_tf_text', 'feature_store')(s)) }}
{%- endmacro %}
{% macro default__fs_tf_text(s) -%}
    {{ return("'" ~ (s | replace("'", "''")) ~ "'") }}
{%- endmacro %}
{% macro spark__fs_tf_text(s) -%}
    {{ return("'" ~ (s | replace("\\", "\\\\") | replace("'", "\\'")) ~ "'") }}
{%- endmacro %}

{% macro fs_tf_output_kind(fn, kind) -%}
    {%- if fn in ['standard_scaler', 'min_max_scaler', 'robust_scaler', 'log1p', 'clip'] -%}{{ return('numeric') }}
    {%- elif fn in ['label_encode', 'bucketize'] -%}{{ return('integer') }}
    {%- elif fn == 'one_hot' -%}{{ return('onehot') }}
    {%- elif kind == 'integer' -%}{{ return('numeric') }}
    {%- else -%}{{ return(kind) }}
    {%- endif -%}
{%- endmacro %}

{% macro fs_tf_reads_text(fn, state, input_kind) -%}
    {#- whether step fn reads text (the encoders; impute of a string) rather than a double -#}
    {%- set kind = input_kind if state == 'raw' else state -%}
    {{ return(fn in ['one_hot', 'label_encode'] or (fn == 'impute' and kind == 'string')) }}
{%- endmacro %}

{% macro fs_tf_step_input(fn, expr, state, input_kind) -%}
    {#- the running expression coerced to what step fn consumes; NaN in the raw input counts as missing -#}
    {%- if feature_store.fs_tf_reads_text(fn, state, input_kind) -%}
        {{ return(expr if state == 'string' else 'cast(' ~ expr ~ ' as ' ~ feature_store.fs_type_string() ~ ')') }}
    {%- elif state == 'raw' -%}
        {%- set dbl = feature_store.fs_type_double() -%}
        {{ return('nullif(cast(' ~ expr ~ ' as ' ~ dbl ~ "), cast('NaN' as " ~ dbl ~ '))') }}
    {%- elif state == 'integer' -%}
        {{ return('cast(' ~ expr ~ ' as ' ~ feature_store.fs_type_double() ~ ')') }}
    {%- else -%}
        {{ return(expr) }}
    {%- endif -%}
{%- endmacro %}

{% macro fs_tf_step(fn, e, p) -%}
    {%- set num = feature_store.fs_tf_num -%}
    {%- set text = feature_store.fs_tf_text -%}
    {%- if fn == 'standard_scaler' -%}
        {{ return('((' ~ e ~ ' - ' ~ num(p['mean']) ~ ') / ' ~ num(p['scale']) ~ ')') }}
    {%- elif fn == 'min_max_scaler' -%}
        {{ return('((' ~ e ~ ' - ' ~ num(p['min']) ~ ') / ' ~ num(p['scale']) ~ ')') }}
    {%- elif fn == 'robust_scaler' -%}
        {{ return('((' ~ e ~ ' - ' ~ num(p['median']) ~ ') / ' ~ num(p['scale']) ~ ')') }}
    {%- elif fn == 'log1p' -%}
        {{ return('(case when ' ~ e ~ ' > -1 then ln(1 + ' ~ e ~ ') end)') }}
    {%- elif fn == 'clip' -%}
        {%- set ns = namespace(whens='') -%}
        {%- if p.get('min') is not none -%}{%- set ns.whens = ns.whens ~ ' when ' ~ e ~ ' < ' ~ num(p['min']) ~ ' then ' ~ num(p['min']) -%}{%- endif -%}
        {%- if p.get('max') is not none -%}{%- set ns.whens = ns.whens ~ ' when ' ~ e ~ ' > ' ~ num(p['max']) ~ ' then ' ~ num(p['max']) -%}{%- endif -%}
        {{ return('(case' ~ ns.whens ~ ' else ' ~ e ~ ' end)') }}
    {%- elif fn == 'impute' -%}
        {{ return('coalesce(' ~ e ~ ', ' ~ (text(p['fill']) if p['fill'] is string else num(p['fill'])) ~ ')') }}
    {%- elif fn == 'bucketize' -%}
        {%- set ns = namespace(whens='') -%}
        {%- for b in p['boundaries'] -%}{%- set ns.whens = ns.whens ~ ' when ' ~ e ~ ' < ' ~ num(b) ~ ' then ' ~ loop.index0 -%}{%- endfor -%}
        {{ return('(case when ' ~ e ~ ' is null then null' ~ ns.whens ~ ' else ' ~ (p['boundaries'] | length) ~ ' end)') }}
    {%- elif fn == 'label_encode' -%}
        {%- set ns = namespace(whens='') -%}
        {%- for c in p['categories'] -%}{%- set ns.whens = ns.whens ~ ' when ' ~ e ~ ' = ' ~ text(c) ~ ' then ' ~ loop.index0 -%}{%- endfor -%}
        {{ return('(case when ' ~ e ~ ' is null then null' ~ ns.whens ~ ' else ' ~ p['unseen_code'] ~ ' end)') }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("fs_apply_transformations: unknown transformation function " ~ fn ~ " in fitted statistics; refit the training dataset") }}
    {%- endif -%}
{%- endmacro %}

{% macro fs_tf_one_hot(e, p) -%}
    {%- set text = feature_store.fs_tf_text -%}
    {%- set items = [] -%}
    {%- set known = [] -%}
    {%- for c in p['categories'] -%}
        {%- do items.append([p['columns'][loop.index0], '(case when ' ~ e ~ ' = ' ~ text(c) ~ ' then 1 else 0 end)']) -%}
        {%- do known.append(text(c)) -%}
    {%- endfor -%}
    {%- if known -%}
        {%- do items.append([p['unseen_column'], '(case when ' ~ e ~ ' is null then 0 when ' ~ e ~ ' in (' ~ (known | join(', ')) ~ ') then 0 else 1 end)']) -%}
    {%- else -%}
        {%- do items.append([p['unseen_column'], '(case when ' ~ e ~ ' is null then 0 else 1 end)']) -%}
    {%- endif -%}
    {{ return(items) }}
{%- endmacro %}

{% macro fs_tf_chain_state(chain, upto) -%}
    {#- [expression, state] of a chain after its first `upto` steps (one_hot excluded: it ends a chain);
        state: raw (the untouched input column) | numeric | integer | string -#}
    {%- set ns = namespace(expr=feature_store.fs_tf_ident(chain['feature']), state='raw', kind=chain['input_kind']) -%}
    {%- for step in chain['steps'][:upto] -%}
        {%- set e = feature_store.fs_tf_step_input(step['fn'], ns.expr, ns.state, chain['input_kind']) -%}
        {%- set ns.expr = feature_store.fs_tf_step(step['fn'], e, step['params']) -%}
        {%- set ns.kind = feature_store.fs_tf_output_kind(step['fn'], ns.kind) -%}
        {%- set ns.state = ns.kind -%}
    {%- endfor -%}
    {{ return([ns.expr, ns.state]) }}
{%- endmacro %}

{% macro fs_tf_step_operand(chain, i) -%}
    {#- [expression, reads_text]: the input of step i of a chain (the steps before it applied), coerced to what
        the step consumes. Fitting computes step i's statistics over it. -#}
    {%- set state = feature_store.fs_tf_chain_state(chain, i) -%}
    {%- set fn = chain['steps'][i]['fn'] -%}
    {{ return([feature_store.fs_tf_step_input(fn, state[0], state[1], chain['input_kind']),
               feature_store.fs_tf_reads_text(fn, state[1], chain['input_kind'])]) }}
{%- endmacro %}

{% macro fs_tf_finite(e) -%}
    {#- e where it is finite, else null: the values every fitted statistic is computed over -#}
    {%- set dbl = feature_store.fs_type_double() -%}
    {{ return("(case when " ~ e ~ " > cast('-Infinity' as " ~ dbl ~ ") and " ~ e ~ " < cast('Infinity' as " ~ dbl ~ ") then " ~ e ~ " end)") }}
{%- endmacro %}

{% macro fs_tf_chain_items(chain) -%}
    {#- [[column, expression], ...] of one fitted chain: its steps applied in order -#}
    {%- set n = chain['steps'] | length -%}
    {%- if chain['steps'][n - 1]['fn'] == 'one_hot' -%}
        {{ return(feature_store.fs_tf_one_hot(feature_store.fs_tf_step_operand(chain, n - 1)[0], chain['steps'][n - 1]['params'])) }}
    {%- endif -%}
    {{ return([[chain['output'], feature_store.fs_tf_chain_state(chain, n)[0]]]) }}
{%- endmacro %}
