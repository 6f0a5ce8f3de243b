"""nbgrader's cell-metadata checks with each JSON schema checked once, not once per cell.

nbgrader checks every cell's metadata with ``jsonschema.validate``, which checks the schema
itself again on each call: most of the time of nbgrader's CheckCellMetadata step, and of
`course grade`'s own check of what a student hands in (grading/staging.py), 360 calls for
eight a1 notebooks. ``install()`` gives nbgrader's format module ``validate_against``
instead: the same errors (the best match of all) and the same exceptions, with the schema
checked and its validator built once per schema and process. nbgrader_config.py installs
it for every nbgrader command and `course` process; the grading fork server does too.
"""
from __future__ import annotations

import json

_VALIDATORS: dict[str, object] = {}


def validate_against(instance, schema) -> None:
    """``jsonschema.validate(instance, schema)``, the schema checked once per process."""
    import jsonschema

    key = json.dumps(schema, sort_keys=True)
    validator = _VALIDATORS.get(key)
    if validator is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        validator = _VALIDATORS[key] = cls(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Point nbgrader's metadata checks (nbgrader.nbgraderformat.common) at validate_against."""
    import types

    import jsonschema
    from nbgrader.nbgraderformat import common

    common.jsonschema = types.SimpleNamespace(validate=validate_against, ValidationError=jsonschema.ValidationError)
