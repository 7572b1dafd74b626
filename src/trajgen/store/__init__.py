"""The bytes of a run: the one I/O layer, shard and manifest formats, codecs, the run directory's
layout, the JSON schema, safe outputs and versions. It knows nothing of how a run is made."""
