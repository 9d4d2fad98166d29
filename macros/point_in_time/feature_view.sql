{#- Feature views: a model's whole SQL body is `{{ feature_store.fs_feature_view() }}`; the declaration lives in the
    model's YAML under config.meta.fs.feature_view (format: models/feature_views/_feature_views.yml and
    fs_cli/declarations/feature_views.py, which validates it before anything runs).

    dbt renders model SQL at parse time WITHOUT the YAML config, so nothing can be resolved then (and ref() cannot
    be called from the declaration). Everything is resolved while executing, from `graph.nodes`: the spine model and
    each feature group's published snapshot (`<fg>_snapshot`). A view's `-- depends_on: {{ ref(...) }}` comments
    (optional) give plain `dbt build` the order; `fs training-dataset create` compiles the view itself.

    var `fs_as_of` (a commit time, naive UTC) reads every feature group as it was published then (bitemporal);
    without it, the currently published rows. -#}

{% macro fs_feature_view(declaration=none) -%}
    {%- if not execute -%}
        {#- Parse time: no config yet. Never executed. -#}
        select 1 as fs_feature_view_unresolved
    {%- else -%}
        {%- set decl = declaration if declaration is not none else
            ((model.config.meta or {}).get('fs') or {}).get('feature_view') -%}
        {{ return(feature_store.fs_feature_view_sql(model.name, decl, var('fs_as_of', none))) }}
    {%- endif -%}
{%- endmacro %}


{% macro fs_fv_fail(fv_name, message) -%}
    {{ exceptions.raise_compiler_error("feature view " ~ fv_name ~ ": " ~ message) }}
{%- endmacro %}


{% macro fs_fv_find_node(name, resource_types) -%}
    {#- The graph node called `name` (versioned models also answer to <name>_v<N>), or none. -#}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type in resource_types and node.package_name == project_name -%}
            {%- if node.name == name or (node.get('version') is not none and node.name ~ '_v' ~ node.version == name) -%}
                {{ return(node) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type in resource_types and node.name == name -%}
            {{ return(node) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{%- endmacro %}


{% macro fs_fv_relation(node) -%}
    {%- if node.get('relation_name') -%}
        {{ return(node.relation_name) }}
    {%- endif -%}
    {{ return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) | string) }}
{%- endmacro %}


{% macro fs_fv_as_list(x) -%}
    {%- if x is none -%}{{ return([]) }}{%- endif -%}
    {{ return([x] if x is string else (x | list)) }}
{%- endmacro %}


{% macro fs_fv_published(snapshot_relation, as_of) -%}
    {#- The published rows of a feature group: current, or as of commit time `as_of`. dbt_is_deleted is the
        string 'True'/'False' that `hard_deletes: new_record` writes. -#}
    {%- if as_of is none -%}
        (select * from {{ snapshot_relation }}
         where dbt_valid_to is null and coalesce(dbt_is_deleted, 'False') <> 'True')
    {%- else -%}
        (select * from {{ snapshot_relation }}
         where dbt_valid_from <= cast('{{ as_of }}' as timestamp)
           and (dbt_valid_to is null or dbt_valid_to > cast('{{ as_of }}' as timestamp))
           and coalesce(dbt_is_deleted, 'False') <> 'True')
    {%- endif -%}
{%- endmacro %}


{% macro fs_feature_view_sql(fv_name, decl, as_of=none) -%}
    {#- as_of is formatted into SQL: accept only a plain timestamp. fs_cli passes isoformat(sep=' '). -#}
    {%- if as_of is not none and as_of != '' -%}
        {%- set as_of = as_of | string | trim -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?', as_of) -%}
            {{ feature_store.fs_fv_fail(fv_name, "var fs_as_of '" ~ as_of ~ "' is not a timestamp like 2026-01-31 12:00:00") }}
        {%- endif -%}
    {%- else -%}
        {%- set as_of = none -%}
    {%- endif -%}
    {#- One interpretation of the declaration: `fs` passes the resolution fs_cli.metadata made (var
        fs_resolved_views); plain dbt resolves here with the same rules (tests/test_resolved_model.py asserts the
        two are equal for every demo view and for generated declarations). -#}
    {%- set rv = (var('fs_resolved_views', {}) or {}).get(fv_name) -%}
    {%- if rv is none -%}
        {%- set rv = feature_store.fs_resolve_feature_view(fv_name, decl) -%}
    {%- endif -%}
    {%- set fgs = [] -%}
    {%- for g in rv.feature_groups -%}
        {%- do fgs.append({
            'name': g.name,
            'relation': feature_store.fs_fv_published(g.relation, as_of),
            'join_keys': g.join_keys,
            'event_time': g.event_time,
            'created_time': g.created_time,
            'ttl_seconds': g.ttl_seconds,
            'features': g.features,
            'prefix': g.prefix,
        }) -%}
    {%- endfor -%}
    {#- A snapshot spine is read like the feature groups (its published rows, as of `as_of`): a late or corrected
        label cannot change the reproduction of a training dataset. Any other spine is read as it is now. -#}
    {%- set spine = feature_store.fs_fv_published(rv.spine.relation, as_of) if rv.spine.get('versioned')
                    else rv.spine.relation -%}
    {%- set pit = feature_store.fs_point_in_time_join(
        spine, fgs, rv.spine.timestamp, rv.boundary == 'inclusive', rv.spine.columns) -%}
    {%- set on_demand = decl.get('on_demand') or [] -%}
    {%- if on_demand | length > 0 -%}
        {#- On-demand features (macros/transforms/on_demand.sql) are computed over the joined row. -#}
select __fs_fv.*,
    {{ feature_store.fs_on_demand_columns(on_demand) }}
from (
{{ pit }}
) as __fs_fv
    {%- else -%}
{{ pit }}
    {%- endif -%}
{%- endmacro %}


{% macro fs_resolve_feature_view(fv_name, decl) -%}
    {#- The resolved declaration (the same structure as fs_cli.metadata.FeatureView.resolved()):
        {name, spine: {relation, timestamp, columns}, feature_groups: [{name, relation (the snapshot), join_keys
        {fg column: spine column}, event_time, created_time, ttl_seconds (0 = unlimited), features, prefix}],
        boundary, output_columns}. -#}
    {%- if decl is not mapping -%}
        {{ feature_store.fs_fv_fail(fv_name, "no config.meta.fs.feature_view declaration in its YAML") }}
    {%- endif -%}
    {%- set sp = decl.get('spine') or {} -%}
    {%- set spine_node = feature_store.fs_fv_find_node(sp.get('model'), ['model', 'seed', 'snapshot']) -%}
    {%- if spine_node is none -%}
        {{ feature_store.fs_fv_fail(fv_name, "spine.model '" ~ sp.get('model') ~ "' is not a model, seed or snapshot of the project") }}
    {%- endif -%}
    {%- set entities = var('fs_entities', {}) -%}
    {%- set entity_map = sp.get('entities') or {} -%}
    {%- set key_cols = [] -%}
    {%- set fgs = [] -%}
    {%- set outputs = [] -%}
    {%- for fs_set in decl.get('features') or [] -%}
        {%- set fg_name = fs_set.get('feature_group') -%}
        {%- set fg_node = feature_store.fs_fv_find_node(fg_name, ['model']) -%}
        {%- set snap_node = feature_store.fs_fv_find_node(fg_name ~ '_snapshot', ['snapshot']) -%}
        {%- if fg_node is none or snap_node is none -%}
            {{ feature_store.fs_fv_fail(fv_name, "feature group '" ~ fg_name ~ "' has no model or no snapshot "
                ~ fg_name ~ "_snapshot (publish it with `fs run`)") }}
        {%- endif -%}
        {%- set meta = (fg_node.config.meta or {}).get('fs') or {} -%}
        {%- set join_keys = {} -%}
        {%- set jk_list = [] -%}
        {%- for e in feature_store.fs_fv_as_list(meta.get('entities')) -%}
            {%- if e not in entities -%}
                {{ feature_store.fs_fv_fail(fv_name, "entity '" ~ e ~ "' of feature group " ~ fg_name ~ " is not in vars.fs_entities") }}
            {%- endif -%}
            {%- set m = entity_map.get(e) -%}
            {%- for jk in feature_store.fs_fv_as_list(entities[e].join_keys) -%}
                {%- set col = m.get(jk, jk) if m is mapping else (m if m else jk) -%}
                {%- do join_keys.update({jk: col}) -%}
                {%- do jk_list.append(jk) -%}
                {%- if col not in key_cols -%}{%- do key_cols.append(col) -%}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- set pk = feature_store.fs_fv_as_list(meta.get('primary_key')) or jk_list -%}
        {%- set reserved = pk + [meta.get('event_time')] + ([meta.get('created_time')] if meta.get('created_time') else []) -%}
        {%- set sel = fs_set.get('features', '*') -%}
        {%- if sel is none or sel == '*' or sel == ['*'] -%}
            {%- set features = [] -%}
            {%- for c in fg_node.columns -%}
                {%- if c not in reserved -%}{%- do features.append(c) -%}{%- endif -%}
            {%- endfor -%}
        {%- else -%}
            {%- set features = feature_store.fs_fv_as_list(sel) -%}
        {%- endif -%}
        {%- set prefix = fs_set.get('prefix') or '' -%}
        {%- for f in features -%}{%- do outputs.append(prefix ~ f) -%}{%- endfor -%}
        {%- do fgs.append({
            'name': fg_name,
            'relation': feature_store.fs_fv_relation(snap_node),
            'join_keys': join_keys,
            'event_time': meta.get('event_time'),
            'created_time': meta.get('created_time') or none,
            'ttl_seconds': feature_store.fs_ttl_seconds(meta.get('ttl')),
            'features': features,
            'prefix': prefix,
        }) -%}
    {%- endfor -%}
    {%- set spine_cols = [] -%}
    {%- for c in key_cols + [sp.get('timestamp')] + feature_store.fs_fv_as_list(sp.get('columns'))
                 + feature_store.fs_fv_as_list(sp.get('label')) + feature_store.fs_fv_as_list(sp.get('labels')) -%}
        {%- if c not in spine_cols -%}{%- do spine_cols.append(c) -%}{%- endif -%}
    {%- endfor -%}
    {%- set boundary = decl.get('boundary', 'inclusive') -%}
    {%- if boundary not in ['inclusive', 'strict'] -%}
        {{ feature_store.fs_fv_fail(fv_name, "boundary must be inclusive (event_time <= spine time) or strict (<), got '" ~ boundary ~ "'") }}
    {%- endif -%}
    {%- set od_names = [] -%}
    {%- for d in decl.get('on_demand') or [] -%}
        {%- if d is mapping and d.get('name') is string -%}{%- do od_names.append(d.get('name')) -%}{%- endif -%}
    {%- endfor -%}
    {{ return({
        'name': fv_name,
        'spine': {'relation': feature_store.fs_fv_relation(spine_node), 'timestamp': sp.get('timestamp'),
                  'columns': spine_cols, 'versioned': spine_node.resource_type == 'snapshot'},
        'feature_groups': fgs,
        'boundary': boundary,
        'output_columns': spine_cols + outputs + od_names,
    }) }}
{%- endmacro %}
