"""A person's own JSON Schema, for `andini generate`: loaded from a JSON or YAML file, checked to be a
draft 2020-12 schema, its `$ref`s resolved (inside the file, or to files beside it) and bundled into
one self-contained schema that a decoder's grammar can take, and each keyword sorted into those the
grammar enforces and those left to validation and retry.

Every error names the file and a JSON pointer (RFC 6901) into the schema:

    deploy.json: at /properties/replicas/type: 'int' is not valid under any of the given schemas
    ci.yaml: at /properties/jobs/$ref: cannot resolve '#/$defs/job' (no such place in ci.yaml)

The `jsonschema` and `referencing` libraries (the reference Python implementation) do the checking
and the resolving; what we add is the bundling and the grammar report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from andini.errors import InputError

#: Assertion keywords that xgrammar's JSON Schema compiler cannot enforce (measured on xgrammar
#: 0.2.8 in tests/test_generate.py): a document is held to them by validation, then retry.
NOT_BY_GRAMMAR = {
    "oneOf": "the grammar allows any branch; 'exactly one' is checked after generation",
    "allOf": "the grammar takes only one branch; the others are checked after generation",
    "not": "a negation has no grammar; checked after generation",
    "uniqueItems": "checked after generation",
    "dependentRequired": "checked after generation",
    "if": "conditional schemas are checked after generation",
    "then": "conditional schemas are checked after generation",
    "else": "conditional schemas are checked after generation",
    "contains": "the grammar allows arrays without a matching item; checked after generation",
    "minContains": "checked after generation",
    "maxContains": "checked after generation",
}
#: Keywords the grammar drops when they stand beside a `pattern` (xgrammar warns and ignores them).
#: `maxLength` is not among them: agent/bounds.py shortens the pattern's repetitions to hold it.
BESIDE_PATTERN = {"minLength": "a string length beside a pattern is checked after generation (give the "
                               "pattern's repetitions a minimum, e.g. {3,40}, to hold it while decoding)"}
#: Keywords whose value is one subschema, a list of them, or a map of them (draft 2020-12).
_ONE = ("items", "contains", "additionalProperties", "propertyNames", "not", "if", "then", "else",
        "unevaluatedItems", "unevaluatedProperties")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
BUNDLE_DEFS = "andini_refs"


def pointer(parts: list[Any] | tuple[Any, ...]) -> str:
    """An RFC 6901 JSON pointer: '' is the whole document, '/a/0/b~1c' a place in it."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True)
class Unenforced:
    """A keyword the grammar cannot honour, at its place in the schema."""

    keyword: str
    pointer: str
    how: str

    def __str__(self) -> str:
        return f"{self.keyword} at {self.pointer or '/'}: {self.how}"


@dataclass
class DocSchema:
    """A checked schema: the person's as written, and the bundled one a grammar compiles."""

    schema: dict[str, Any] | bool
    source: str
    bundled: dict[str, Any] | bool
    unenforced: list[Unenforced] = field(default_factory=list)
    #: each bundled `$ref` -> the reference as the person wrote it (for errors that point into their schema)
    origins: dict[str, str] = field(default_factory=dict)

    @cached_property
    def grammar(self) -> dict[str, Any] | bool:
        """The bundle in the form a grammar compiler honours: keywords beside an `anyOf`/`oneOf` moved
        into each branch (xgrammar otherwise drops them and lets any value through). Same meaning."""
        return distribute(self.bundled)

    @cached_property
    def validator(self) -> Any:
        from jsonschema import Draft202012Validator

        # the bundle means the same as the schema and needs no files: references point inside it
        return Draft202012Validator(self.bundled, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def errors(self, document: Any) -> list[str]:
        """What is wrong with `document`, one line per problem: instance pointer, message, keyword."""
        found = sorted(self.validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
        return [f"at {pointer(list(e.absolute_path)) or '/'}: {e.message[:300]} ({e.validator})" for e in found]

    @property
    def name(self) -> str:
        schema = self.schema if isinstance(self.schema, dict) else {}
        return str(schema.get("title") or Path(self.source).stem or "document")


def load_schema(source: str | Path | dict | bool, *, name: str = "<schema>", files: bool = True) -> DocSchema:
    """A DocSchema from a .json/.yaml/.yml file, or from an already-parsed schema (`name` names it).

    `files=False` resolves references inside the schema only: a schema sent over the network must
    not make the server read its files."""
    if isinstance(source, dict | bool):
        return check_schema(source, name, base=Path.cwd(), files=files)
    path = Path(source)
    return check_schema(read_document(path), str(path), base=path.resolve().parent, files=files)


def read_document(path: Path) -> Any:
    """The JSON or YAML in a file: by its suffix, else JSON first and YAML next."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("no such file", path=path, hint="give the path of a JSON or YAML schema") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read it: {exc}", path=path) from exc
    return parse_document(text, path)


def parse_document(text: str, path: Path | str) -> Any:
    """JSON or YAML text (from a file named `path`, or pasted: any name): by the suffix, else JSON
    first and YAML next. Errors name `path` and the line."""
    if str(path).lower().endswith(".json"):
        return _json(text, path)
    try:
        return json.loads(text)
    except ValueError:
        return _yaml(text, path)


def load_schema_text(text: str, name: str = "pasted schema") -> DocSchema:
    """A DocSchema from JSON or YAML text that has no file (pasted, uploaded, sent): its references
    stay inside it."""
    return check_schema(parse_document(text, name), name, base=Path.cwd(), files=False)


def _json(text: str, path: Path | str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno) from exc


def _yaml(text: str, path: Path | str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"neither JSON nor YAML: {problem}", path=path,
                         line=mark.line + 1 if mark is not None else None) from exc


def check_schema(schema: Any, source: str, base: Path, files: bool = True) -> DocSchema:
    """Check `schema` against the draft 2020-12 meta-schema, resolve and bundle its references."""
    from jsonschema import Draft202012Validator

    if not isinstance(schema, dict | bool):
        raise InputError(f"not a schema: the top level is {type(schema).__name__}, a JSON Schema is an "
                         "object (or true/false)", path=source)
    problems = sorted(Draft202012Validator(Draft202012Validator.META_SCHEMA).iter_errors(schema),
                      key=lambda e: len(e.absolute_path), reverse=True)
    if problems:
        worst = problems[0]
        raise InputError(f"not a valid JSON Schema: at {pointer(list(worst.absolute_path)) or '/'}: "
                         f"{worst.message[:300]}", path=source,
                         hint="see https://json-schema.org/draft/2020-12 for the keywords and their values")
    registry, uri = _registry(schema, source, base, files)
    bundler = _Bundler(registry, source)
    bundled = bundler.bundle(schema, uri)
    return DocSchema(schema=schema, source=source, bundled=bundled, unenforced=unenforced(bundled, bundler.origin),
                     origins={f"#/$defs/{BUNDLE_DEFS}/{n}": ref for n, ref in bundler.origin.items()})


def _registry(schema: dict | bool, source: str, base: Path, files: bool) -> tuple[Any, str]:
    """A `referencing` registry holding the schema, that reads other files beside it on demand."""
    from referencing import Registry, Resource
    from referencing.exceptions import NoSuchResource
    from referencing.jsonschema import DRAFT202012

    # referencing's stubs mark its attrs classes with the pre-PEP 681 `__dataclass_transform__`, which
    # mypy does not read: it sees no fields, so the documented keyword arguments need an ignore.
    def missing(uri: str) -> NoSuchResource:
        return NoSuchResource(ref=uri)  # type: ignore[call-arg]

    def retrieve(uri: str) -> Resource:
        if not (files and uri.startswith("file:")):
            raise missing(uri)  # never fetched: nothing is downloaded
        from urllib.parse import unquote, urlparse

        path = Path(unquote(urlparse(uri).path))
        if not path.is_file():
            raise missing(uri)
        return DRAFT202012.create_resource(read_document(path))

    uri = (base / Path(source).name).resolve().as_uri() if source != "<schema>" else (base / "schema.json").as_uri()
    resource = Resource.from_contents(schema, default_specification=DRAFT202012)
    registry: Registry = Registry(retrieve=retrieve)  # type: ignore[call-arg]  # as NoSuchResource above
    return registry.with_resource(uri, resource), uri


class _Bundler:
    """Rewrites every `$ref` to `#/$defs/andini_refs/N`, one entry per distinct target, so the result
    stands alone (references to other files included) and recursion stays a reference."""

    def __init__(self, registry: Any, source: str):
        self.registry, self.source = registry, source
        self.defs: dict[str, Any] = {}
        self.names: dict[int, str] = {}
        #: def name -> the $ref as the person wrote it, so reports point into their schema
        self.origin: dict[str, str] = {}

    def bundle(self, schema: Any, uri: str) -> Any:
        resolver = self.registry.resolver(base_uri=uri)
        out = self.walk(schema, resolver, [])
        if self.defs and isinstance(out, dict):
            out = {**out, "$defs": {BUNDLE_DEFS: self.defs}}
        return out

    def walk(self, node: Any, resolver: Any, at: list[Any]) -> Any:
        if not isinstance(node, dict):
            return node
        if "$id" in node and isinstance(node["$id"], str):
            resolver = resolver.in_subresource(_resource(node))
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _ONE:
                out[key] = self.walk(value, resolver, [*at, key])
            elif key in _LIST and isinstance(value, list):
                out[key] = [self.walk(v, resolver, [*at, key, i]) for i, v in enumerate(value)]
            elif key in _MAP and isinstance(value, dict):
                out[key] = {k: self.walk(v, resolver, [*at, key, k]) for k, v in value.items()}
            elif key == "$ref":
                out[key] = self.reference(value, resolver, [*at, key])
            elif key not in ("$id", "$schema", "$anchor", "$dynamicAnchor", "$dynamicRef", "$defs", "definitions"):
                # definitions are dead once every $ref points into the bundle
                out[key] = value
        return out

    def reference(self, ref: str, resolver: Any, at: list[Any]) -> str:
        from referencing.exceptions import Unresolvable

        try:
            resolved = resolver.lookup(ref)
        except Unresolvable as exc:
            raise InputError(f"at {pointer(at)}: cannot resolve {ref!r} ({type(exc).__name__}: {exc})",
                             path=self.source, hint="point $ref at a place that exists: '#/$defs/NAME' in "
                                                    "this file, or 'other.json#/...' beside it") from exc
        key = id(resolved.contents)  # the registry hands out the same object for the same place
        if key not in self.names:
            name = self.names[key] = str(len(self.names))
            self.origin[name] = ref
            self.defs[name] = True  # placeholder: a recursive reference finds its name already taken
            self.defs[name] = self.walk(resolved.contents, resolved.resolver, at)
        return f"#/$defs/{BUNDLE_DEFS}/{self.names[key]}"


def _resource(node: dict) -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012.create_resource(node)


def unenforced(schema: Any, origin: dict[str, str] | None = None) -> list[Unenforced]:
    """Each keyword of the bundled schema that the grammar cannot honour, with its pointer into the
    person's schema (under a reference: the `$ref` as written, then the pointer inside its target)."""
    origin = origin or {}
    found = _unenforced(schema, "")
    defs = schema.get("$defs", {}).get(BUNDLE_DEFS, {}) if isinstance(schema, dict) else {}
    for name, target in defs.items():
        found += _unenforced(target, origin.get(name, name))
    return found


def _unenforced(schema: Any, at: str) -> list[Unenforced]:
    if not isinstance(schema, dict):
        return []
    found = []
    for key, value in schema.items():
        here = at + pointer([key])
        if key in NOT_BY_GRAMMAR and not (key == "allOf" and isinstance(value, list) and len(value) < 2):
            found.append(Unenforced(key, here, NOT_BY_GRAMMAR[key]))
        if key in BESIDE_PATTERN and "pattern" in schema:
            found.append(Unenforced(key, here, BESIDE_PATTERN[key]))
        if key in _BRANCHING and isinstance(value, list) and _distributed(schema, key) is None:
            found.append(Unenforced(key, here, "its branches restate keywords beside it, which the grammar "
                                              "would drop: the whole subschema is checked after generation"))
        if key in _ONE:
            found += _unenforced(value, here)
        elif key in _LIST and isinstance(value, list):
            for i, v in enumerate(value):
                found += _unenforced(v, here + pointer([i]))
        elif key in _MAP and isinstance(value, dict) and key != "$defs":
            for k, v in value.items():
                found += _unenforced(v, here + pointer([k]))
    return found


# ---------------------------------------------------------------- the grammar's form

_BRANCHING = ("anyOf", "oneOf")
#: Keywords that assert nothing: they stay beside the branches.
_ANNOTATIONS = {"title", "description", "$comment", "default", "examples", "deprecated", "readOnly",
                "writeOnly", "$defs", "definitions"}


def distribute(schema: Any) -> Any:
    """`schema` with the assertions beside each `anyOf`/`oneOf` merged into its branches, everywhere
    (`{"type": "object", "properties": P, "anyOf": [{"required": ["a"]}, ...]}` becomes
    `{"anyOf": [{"type": "object", "properties": P, "required": ["a"]}, ...]}`). A node whose branches
    restate a sibling keyword differently is left as written (and reported by `unenforced`)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ONE:
            out[key] = distribute(value)
        elif key in _LIST and isinstance(value, list):
            out[key] = [distribute(v) for v in value]
        elif key == "$defs" and isinstance(value.get(BUNDLE_DEFS) if isinstance(value, dict) else None, dict):
            out[key] = {**value, BUNDLE_DEFS: {k: distribute(v) for k, v in value[BUNDLE_DEFS].items()}}
        elif key in _MAP and isinstance(value, dict):
            out[key] = {k: distribute(v) for k, v in value.items()}
        else:
            out[key] = value
    for key in _BRANCHING:
        if key in out and isinstance(out[key], list):
            out = _distributed(out, key) or out
            break
    return out


def _distributed(node: dict[str, Any], key: str) -> dict[str, Any] | None:
    """`node` with its siblings of `key` moved into `key`'s branches, or None when a branch conflicts."""
    siblings = {k: v for k, v in node.items() if k != key and k not in _ANNOTATIONS and k not in _BRANCHING}
    if not siblings:
        return node
    branches = []
    for branch in node[key]:
        merged = _merge(siblings, branch)
        if merged is None:
            return None
        branches.append(merged)
    return {**{k: v for k, v in node.items() if k not in siblings}, key: branches}


def _merge(siblings: dict[str, Any], branch: Any) -> Any:
    if branch is True:
        return dict(siblings)
    if branch is False or not isinstance(branch, dict):
        return branch
    out = dict(siblings)
    for k, v in branch.items():
        if k == "required" and isinstance(out.get(k), list) and isinstance(v, list):
            out[k] = [*out[k], *[n for n in v if n not in out[k]]]
        elif k == "properties" and isinstance(out.get(k), dict) and isinstance(v, dict):
            if any(name in out[k] and out[k][name] != sub for name, sub in v.items()):
                return None
            out[k] = {**out[k], **v}
        elif k not in out or out[k] == v:
            out[k] = v
        else:
            return None
    return out
