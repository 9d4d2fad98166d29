{#-
  Generic test: every expectation a feature group declares in its YAML, as one dbt test.

  Attach it to a feature-group model (`data_tests: [fs_expectations]`; add `config: {severity: warn}` for policy
  `warn`). It reads the model's declaration from the graph at run time, so there is one source of truth for
  fs_cli's Soda contract and for plain `dbt build`:
    - primary key, event time (and created time) and columns with `config.meta.fs.not_null` have no NULLs
    - primary key + event time (+ created time) is unique (the snapshot's unique key)
    - `config.meta.fs.range: [min, max]` (inclusive, null = open) and `allowed_values: [...]`
  Each failing row says which check it broke (fs_check) and the offending value (fs_value). Because the snapshot
  that publishes the model depends on it, `dbt build` skips the publish when this test fails with severity error.
-#}
{% test fs_expectations(model) %}
{%- set str = fs_type_string() -%}
{%- set node = fs_expectations_node(model) -%}
{%- if node is none -%}
    {#- parse time (no graph yet), or a model without a declaration: nothing to check -#}
    select cast(null as {{ str }}) as fs_check, cast(null as {{ str }}) as fs_value where 1 = 0
{%- else -%}
    {%- set fs = node.config.meta.get('fs', {}) or {} -%}
    {%- set keys = fs_expectations_key_columns(fs) -%}
    {%- set parts = [] -%}
    {%- for k in keys -%}
        {%- do parts.append("select 'not_null:" ~ k ~ "' as fs_check, cast(null as " ~ str ~ ") as fs_value from "
            ~ model ~ " where " ~ adapter.quote(k) ~ " is null") -%}
    {%- endfor -%}
    {%- set qkeys = [] -%}
    {%- for k in keys %}{% do qkeys.append(adapter.quote(k)) %}{% endfor -%}
    {%- if qkeys -%}
        {%- do parts.append("select 'unique_key' as fs_check, cast(count(*) as " ~ str ~ ") as fs_value from "
            ~ model ~ " group by " ~ qkeys | join(', ') ~ " having count(*) > 1") -%}
    {%- endif -%}
    {%- for name, col in node.columns.items() -%}
        {%- set cmeta = (col.config.meta if col.config is defined and col.config.meta else col.meta) or {} -%}
        {%- set cfs = cmeta.get('fs', {}) or {} -%}
        {%- set qc = adapter.quote(name) -%}
        {%- if cfs.get('not_null') and name not in keys -%}
            {%- do parts.append("select 'not_null:" ~ name ~ "' as fs_check, cast(null as " ~ str ~ ") as fs_value from "
                ~ model ~ " where " ~ qc ~ " is null") -%}
        {%- endif -%}
        {%- set rng = cfs.get('range') -%}
        {%- if rng -%}
            {%- if rng is string or rng is mapping or rng | length != 2 -%}
                {%- do exceptions.raise_compiler_error("fs_expectations: column " ~ name ~ " of " ~ node.name
                    ~ ": range must be [min, max] (numbers or null), got " ~ rng) -%}
            {%- endif -%}
            {%- set conds = [] -%}
            {%- if rng[0] is not none %}{% do conds.append(qc ~ " < " ~ fs_expectations_number(rng[0], name, node)) %}{% endif -%}
            {%- if rng[1] is not none %}{% do conds.append(qc ~ " > " ~ fs_expectations_number(rng[1], name, node)) %}{% endif -%}
            {%- if conds -%}
                {%- do parts.append("select 'range:" ~ name ~ "' as fs_check, cast(" ~ qc ~ " as " ~ str ~ ") as fs_value from "
                    ~ model ~ " where " ~ conds | join(' or ')) -%}
            {%- endif -%}
        {%- endif -%}
        {%- set allowed = cfs.get('allowed_values') -%}
        {%- if allowed -%}
            {%- set lits = [] -%}
            {%- for v in allowed -%}
                {%- if v is string %}{% do lits.append("'" ~ v | replace("'", "''") ~ "'") %}{% else %}{% do lits.append(fs_expectations_number(v, name, node)) %}{% endif -%}
            {%- endfor -%}
            {%- do parts.append("select 'allowed_values:" ~ name ~ "' as fs_check, cast(" ~ qc ~ " as " ~ str ~ ") as fs_value from "
                ~ model ~ " where " ~ qc ~ " not in (" ~ lits | join(', ') ~ ")") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not parts %}{% do parts.append("select cast(null as " ~ str ~ ") as fs_check, cast(null as " ~ str ~ ") as fs_value where 1 = 0") %}{% endif %}
    {{ parts | join('\nunion all\n') }}
{%- endif -%}
{% endtest %}


{#- The graph node of the model under test (None at parse time). -#}
{% macro fs_expectations_node(model) %}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- for n in graph.nodes.values() -%}
        {%- if n.resource_type == 'model' and n.alias == model.identifier and n.schema == model.schema -%}
            {{ return(n) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{% endmacro %}


{#- Snapshot unique key of a feature group: primary key (default: entity join keys) + event time (+ created time). -#}
{% macro fs_expectations_key_columns(fs) %}
    {%- set keys = [] -%}
    {%- set pk = fs.get('primary_key') -%}
    {%- if pk is string %}{% set pk = [pk] %}{% endif -%}
    {%- if not pk -%}
        {%- set pk = [] -%}
        {%- set entities = var('fs_entities', {}) -%}
        {%- set ents = fs.get('entities', []) -%}
        {%- if ents is string %}{% set ents = [ents] %}{% endif -%}
        {%- for e in ents -%}
            {%- set jk = (entities.get(e, {}) or {}).get('join_keys', []) -%}
            {%- if jk is string %}{% set jk = [jk] %}{% endif -%}
            {%- for k in jk %}{% do pk.append(k) %}{% endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {%- for k in pk %}{% do keys.append(k) %}{% endfor -%}
    {%- if fs.get('event_time') %}{% do keys.append(fs.get('event_time')) %}{% endif -%}
    {%- if fs.get('created_time') %}{% do keys.append(fs.get('created_time')) %}{% endif -%}
    {{ return(keys) }}
{% endmacro %}


{#-
  A declared bound or allowed value as a SQL number literal. Declarations are rendered into the test's SQL, so
  anything but a finite number (a string such as "1 and 1=0", a boolean, a list) is refused with a compile error
  naming the column and the value, never pasted into the query.
-#}
{% macro fs_expectations_number(value, column, node) %}
    {%- if value is number and value is not boolean and (value | string | lower) not in ['nan', 'inf', '-inf'] -%}
        {{ return(value | string) }}
    {%- endif -%}
    {%- do exceptions.raise_compiler_error("fs_expectations: column " ~ column ~ " of " ~ node.name
        ~ " declares " ~ (value | tojson) ~ ", which is not a number: range bounds and non-text allowed_values must"
        ~ " be numbers") -%}
{% endmacro %}
