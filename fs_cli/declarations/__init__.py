"""The feature-store declarations read from the dbt manifest: the one resolved model of the YAML every other layer
reads (see ARCHITECTURE.md, "declarations").

- model.py           Entity, Column, FeatureGroup, FeatureSelection, FeatureView (.resolved()), Catalog
- entities.py        entities from dbt_project.yml vars.fs_entities
- feature_groups.py  one feature group's `config.meta.fs` and its snapshot, parsed and checked
- feature_views.py   one feature view's `config.meta.fs.feature_view`, parsed and checked against the groups
- nodes.py           what is read of a manifest node (is it a feature group, its name, its file)
- load.py            load_catalog: all of them, every problem raised together (errors.Problems)

Import from the module that defines a name; nothing is imported here, so using the model does not load the parser.
"""
