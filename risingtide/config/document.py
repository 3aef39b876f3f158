"""Read YAML text into plain Python values while remembering where each one was written.

PyYAML composes the text into nodes that carry their position (``start_mark``); this
module turns the nodes into dicts, lists and scalars and records, for every *path* from
the root (``("lines", "revenues", "source", "use")``), the line and column of the value and
of the key that holds it. ``${VAR}`` substitution happens here, on every scalar string,
before any validation.

Deliberate differences from ``yaml.safe_load``:

* mapping keys are always the text as written (``no:`` is the key ``"no"``, not ``False``);
* a key repeated in one mapping is an error, not a silent overwrite;
* a date that is not a real date (``2026-13-01``) stays text, so validation can say why;
* merge keys (``<<: *anchor``) work; aliases that refer to themselves do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from risingtide.config.envvars import EnvError, substitute
from risingtide.config.errors import ConfigError

#: A path from the document root: mapping keys and list indexes.
Path = tuple[str | int, ...]
#: A 1-based (line, column).
Pos = tuple[int, int]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed
_YAML_TAG = "tag:yaml.org,2002:"
_STR_TAG = _YAML_TAG + "str"
_MERGE_TAG = _YAML_TAG + "merge"
#: Values (keys, scalars, lists, mappings) a file may hold once its aliases are expanded.
#: A council's config has a few thousand; a shared service's 50,000 lines take 300,000 to
#: 500,000 (six to ten a line); a file with more is a mistake or an attack.
MAX_VALUES = 1_000_000
#: Of those, values that aliases may add: aliases can make a small file expand enormously
#: ("billion laughs"), so the expansion is counted while parsing and stopped here.
MAX_ALIAS_VALUES = 100_000
#: The most parser events (values) a character of YAML can make, with room to spare: the
#: densest texts (``? ? ?``, ``{a,b}``) make about one a character, plus two.
MAX_VALUE_DENSITY = 1.5


def format_path(path: Path) -> str:
    """``("frameworks", "standard", "tiers", 1, "for")`` → ``frameworks.standard.tiers[1].for``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(slots=True)
class Document:
    """A parsed config file: its values, and the position of each value and key.

    ``poisoned`` holds paths whose value could not be read (an unset variable, an unknown
    tag); the error was reported once, and later errors at or under them are noise.
    ``substituted`` maps each value taken from the environment or a file to its reference.
    """

    file: str
    data: Any
    values: dict[Path, Pos] = field(default_factory=dict)
    keys: dict[Path, Pos] = field(default_factory=dict)
    poisoned: set[Path] = field(default_factory=set)
    #: Every value substituted from the environment or a file, to its ``${…}`` reference:
    #: messages never show these values (``envvars.redact``).
    substituted: dict[str, str] = field(default_factory=dict)


class _TooLargeError(Exception):
    pass


class _OverBudgetError(Exception):
    """The file passes the values budget; ``problem`` says where."""

    def __init__(self, problem: ConfigError) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _compose_within_budget(text: str, file: str) -> yaml.Node | None:
    """The composed document, or ``_OverBudgetError`` when it passes the values budget.

    A text long enough to hold more values than the budget is counted first, streaming
    (``_size_problem``), so that a huge file is refused before its nodes are built. A
    shorter one (YAML spends at least about a character a value: ``MAX_VALUE_DENSITY``)
    is composed first, which is safe since aliases share their node (a "billion laughs"
    file composes small): without aliases it is counted on its nodes; one with aliases,
    or that is not YAML, is counted by ``_size_problem``, which says where the budget was
    passed (before any syntax error further on), as it always has.
    """
    if len(text) * MAX_VALUE_DENSITY + 8 > MAX_VALUES:
        _raise_if_too_large(text, file)
        return yaml.compose(text, Loader=_Loader)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        _raise_if_too_large(text, file)
        raise
    if root is None:
        return None
    size = _plain_size(root)
    if size is None or size > MAX_VALUES:
        _raise_if_too_large(text, file)
    return root


def _raise_if_too_large(text: str, file: str) -> None:
    problem = _size_problem(text, file)
    if problem is not None:
        raise _OverBudgetError(problem)


def _size_problem(text: str, file: str) -> ConfigError | None:
    """Refuse a file whose values, aliases expanded, pass the budget, before building any.

    A streaming pass over the parser's events: memory stays small however the aliases
    nest. Each anchor's size is remembered, so an alias counts every value it repeats;
    the error is placed at the event that passed the budget.
    """
    sizes: dict[str, int] = {}
    open_: list[tuple[str | None, int]] = []
    total = aliased = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            added = sizes.get(str(event.anchor), 1)
            total += added
            aliased += added
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor is not None:
                sizes[str(event.anchor)] = 1
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            total += 1
            open_.append((event.anchor, total))
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent) and open_:
            anchor, start = open_.pop()
            if anchor is not None:
                sizes[str(anchor)] = total - start + 1
        else:
            continue
        mark = event.start_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if aliased > MAX_ALIAS_VALUES:
            return ConfigError(
                file, line, col,
                f"aliases expand the file to more than {MAX_ALIAS_VALUES:,} values; write "
                "the repeated part out, or use fewer aliases",
            )  # fmt: skip
        if total > MAX_VALUES:
            return ConfigError(
                file, line, col,
                f"the file has more than {MAX_VALUES:,} values; a config needs far fewer",
            )  # fmt: skip
    return None


def _plain_size(root: yaml.Node) -> int | None:
    """The values in a composed document with no aliases, or None when it has one.

    Without aliases every node is reached once and stands for one parser event, so this
    is the count ``_size_problem`` makes, at a third of its cost. A node reached twice is
    an alias: None, and ``_size_problem`` counts (and places) its expansion.
    """
    seen: set[int] = set()
    stack = [root]
    mapping = yaml.MappingNode
    while stack:
        node = stack.pop()
        key = id(node)
        if key in seen:
            return None
        seen.add(key)
        if isinstance(node, mapping):
            for pair in node.value:
                stack.extend(pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return len(seen)


def _pos(node: yaml.Node) -> Pos:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.doc = Document(file=file, data=None)
        self.env = env
        self.errors: list[ConfigError] = []
        self.constructor = SafeConstructor()
        self.active: set[int] = set()
        self.count = 0

    def error(self, pos: Pos, path: Path, message: str) -> None:
        prefix = format_path(path)
        text = f"{prefix}: {message}" if prefix else message
        self.errors.append(ConfigError(self.doc.file, pos[0], pos[1], text))
        self.doc.poisoned.add(path)

    def value(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:  # a backstop: _size_problem has already counted
            raise _TooLargeError
        self.doc.values[path] = _pos(node)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            self.error(_pos(node), path, "an alias refers to the node that contains it")
            return None
        if not node.tag.startswith(_YAML_TAG):
            self.error(_pos(node), path, f"unknown YAML tag {node.tag}")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.value(child, (*path, i)) for i, child in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        value: Any
        if node.tag == _STR_TAG:
            value = node.value
        elif node.tag in SafeConstructor.yaml_constructors and node.tag.startswith(_YAML_TAG):
            try:
                value = self.constructor.construct_object(node)
            except (yaml.YAMLError, ValueError, TypeError, OverflowError):
                value = node.value  # e.g. 2026-13-01: keep the text; validation says why
        else:
            self.error(_pos(node), path, f"unknown YAML tag {node.tag}")
            return node.value
        if isinstance(value, str):
            try:
                return substitute(value, self.env, self.doc.substituted)
            except EnvError as exc:
                self.error(_pos(node), path, str(exc))
        return value

    def mapping(self, node: yaml.MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merges: list[yaml.Node] = []
        seen: dict[str, Pos] = {}
        explicit: list[tuple[str, yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(_pos(key_node), path, "a key must be plain text")
                continue
            key = str(key_node.value)
            if key in seen:
                self.error(
                    _pos(key_node), path, f'duplicate key "{key}" (first at line {seen[key][0]})'
                )
                continue
            seen[key] = _pos(key_node)
            explicit.append((key, key_node, value_node))
        # In ``<<: [*a, *b]`` the earlier mapping wins, and explicit keys beat them all.
        for merge in reversed(merges):
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in reversed(sources):
                if not isinstance(source, yaml.MappingNode):
                    self.error(_pos(source), path, "<< must name a mapping or a list of them")
                    continue
                if id(source) in self.active:
                    self.error(_pos(source), path, "<< refers to the mapping that contains it")
                    continue
                self.active.add(id(source))
                try:
                    result.update(self.mapping(source, path))
                finally:
                    self.active.discard(id(source))
        for key, key_node, value_node in explicit:
            self.doc.keys[(*path, key)] = _pos(key_node)
            result[key] = self.value(value_node, (*path, key))
        return result


def parse_document(
    text: str, file: str, env: Mapping[str, str]
) -> tuple[Document | None, list[ConfigError]]:
    """Parse YAML ``text`` (read from ``file``) into a ``Document``, substituting ``env``.

    Returns the document (None when the text is not YAML at all) and the errors found.
    """
    try:
        root = _compose_within_budget(text, file)
    except _OverBudgetError as exc:
        return None, [exc.problem]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = str(exc.problem or exc.context or "not valid YAML")
        if exc.context and exc.problem:
            message += f" ({exc.context})"
        return None, [ConfigError(file, line, col, f"YAML syntax error: {message}")]
    except yaml.YAMLError as exc:
        return None, [ConfigError(file, 1, 1, f"YAML syntax error: {exc}")]
    if root is None:
        return None, [ConfigError(file, 1, 1, "the file is empty")]
    builder = _Builder(file, env)
    try:
        builder.doc.data = builder.value(root, ())
    except _TooLargeError:
        return None, [ConfigError(file, 1, 1, f"the file has more than {MAX_VALUES:,} values")]
    return builder.doc, builder.errors
