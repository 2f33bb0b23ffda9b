"""Scale-out on Apache Spark: many regions' datasets and features (issue 17).

The layer above the single-region libraries: it distributes their functions (the simulator,
features.build.build_tables) over regions and customer shards and never re-implements one.
features/ and synthetic/ do not import it; the pandas engine stays the default for one region.

- session.py: the SparkSession from typed settings (local mode by default, a cluster by URL)
- layout.py: the multi-region dataset and features folders (manifests, readers, checks)
- simulate.py: `simulate --regions N`, one Spark task a region
- features.py: `features build --engine spark`, build_tables over customer shards
"""
