"""ConText-style assertion rules: negation, history, hypotheticals, family, uncertainty and
medication actions.

Trigger phrases (``data/context_rules.csv``) open a scope forward or backward from where they
occur; a scope ends at the sentence end, at a terminator ("but", "however", "which", a comma
before a new subject, ...) or after the rule's word window. Pseudo-triggers ("no change",
"gram negative", "not only") win over the shorter trigger they contain, which then does not fire.
"""

from __future__ import annotations

import bisect
import csv
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast, get_args

import spacy
from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from nlp.types import Entity, MedicationAction, Sentence

__all__ = [
    "ASSERTION_CATEGORIES",
    "ContextRule",
    "TriggerMatch",
    "TriggerMatcher",
    "apply_context",
    "default_trigger_matcher",
    "find_triggers",
    "load_rules",
    "medication_action",
]

DATA_DIR = Path(__file__).parent / "data"
ASSERTION_CATEGORIES = ("negated", "historical", "hypothetical", "family", "uncertain")
_ACTIONS: frozenset[str] = frozenset(get_args(MedicationAction))
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ContextRule:
    """One trigger phrase: its category, scope direction and word window (0 = to clause end)."""

    phrase: str
    category: str
    direction: str
    window: int


@dataclass(frozen=True)
class TriggerMatch:
    """A trigger phrase found in the text, with every rule it carries."""

    start: int
    end: int
    text: str
    rules: tuple[ContextRule, ...]

    def has(self, category: str) -> bool:
        return any(r.category == category for r in self.rules)


@functools.cache
def load_rules() -> dict[str, tuple[ContextRule, ...]]:
    """Trigger rules keyed by lower-cased phrase, read once per process."""
    rules: dict[str, list[ContextRule]] = {}
    with (DATA_DIR / "context_rules.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            rule = ContextRule(
                row["phrase"], row["category"], row["direction"], int(row["window"] or 0)
            )
            rules.setdefault(rule.phrase, []).append(rule)
    return {phrase: tuple(found) for phrase, found in rules.items()}


class TriggerMatcher:
    """A case-insensitive PhraseMatcher over every trigger phrase of ``data/context_rules.csv``."""

    def __init__(self, nlp: Language) -> None:
        self.nlp = nlp
        self._matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        self._rules: dict[str, tuple[ContextRule, ...]] = {}
        for phrase, rules in load_rules().items():
            doc = nlp.make_doc(phrase)
            self._matcher.add("TRIGGER", [doc])
            key = " ".join(t.lower_ for t in doc)
            self._rules[key] = self._rules.get(key, ()) + rules

    def __call__(self, doc: Doc) -> list[TriggerMatch]:
        """Trigger phrases in ``doc``, longest first where they overlap, in text order.

        Preferring the longest match is what lets "no change in" beat "no" and "not ruled out"
        beat "ruled out".
        """
        spans = filter_spans([Span(doc, s, e) for _, s, e in self._matcher(doc)])
        found: list[TriggerMatch] = []
        for span in spans:
            rules = self._rules.get(" ".join(t.lower_ for t in span))
            if rules:
                found.append(TriggerMatch(span.start_char, span.end_char, span.text, rules))
        return found


@functools.cache
def default_trigger_matcher() -> TriggerMatcher:
    """A trigger matcher over a blank English tokenizer, for callers without a pipeline."""
    return TriggerMatcher(spacy.blank("en"))


def find_triggers(text: str) -> list[TriggerMatch]:
    """Every trigger phrase in ``text`` (tokenized with a blank English tokenizer)."""
    matcher = default_trigger_matcher()
    return matcher(matcher.nlp.make_doc(text))


def _forward_limit(text: str, pos: int, end: int, window: int) -> int:
    if window <= 0:
        return end
    for i, m in enumerate(_WORD.finditer(text, pos, end)):
        if i == window:
            return m.start()
    return end


def _backward_limit(text: str, start: int, pos: int, window: int) -> int:
    if window <= 0:
        return start
    words = list(_WORD.finditer(text, start, pos))
    return words[-window].start() if len(words) >= window else start


@dataclass(frozen=True)
class _Scope:
    start: int
    end: int
    trigger: TriggerMatch
    rule: ContextRule

    def covers(self, entity: Entity) -> bool:
        if entity.start < self.trigger.end and self.trigger.start < entity.end:
            # A trigger sharing words with the entity ("no acute" / "acute distress") applies
            # only when it starts before the entity, in the direction it reads.
            return self.rule.direction != "backward" and self.trigger.start < entity.start
        return self.start <= entity.start < self.end

    def distance(self, entity: Entity) -> int:
        if self.rule.direction == "backward":
            return max(0, self.trigger.start - entity.end)
        return max(0, entity.start - self.trigger.end)


# ", and" opens a new clause when a finite verb follows before the next comma ("no history of
# stroke, and hypertension is well controlled"); in a list ("no fever, chills, and cough") it does not.
_COMMA_AND = re.compile(
    r",\s+(?:and|or)\s+(?=[^,;]*?\b(?:is|was|are|were|has|have|had|will|does|did|remains)\b)"
)
_CLAUSE_RULE = ContextRule(", and", "terminate", "none", 0)
# An item number inside a run-on list ("5)venous stasis; with no h/o DVT, 6)TURP for BPH")
# starts a new item, which a negation in the item before does not reach.
_LIST_ITEM = re.compile(r"(?<=[\s,;])\d{1,2}\)(?=\s*[A-Za-z])")


def _clause_breaks(text: str, sentence: Sentence) -> list[TriggerMatch]:
    breaks = [
        TriggerMatch(m.start(), m.end(), m.group(0), (_CLAUSE_RULE,))
        for m in _COMMA_AND.finditer(text, sentence.start, sentence.end)
    ]
    breaks += [
        TriggerMatch(m.start(), m.end(), m.group(0), (_CLAUSE_RULE,))
        for m in _LIST_ITEM.finditer(text, sentence.start, sentence.end)
    ]
    return breaks


# "No change in X" keeps X asserted, but a finding that is the change itself ("no changes in
# mood", "no change in bowel habits") starts inside the pseudo-trigger, and its "no" negates it.
_NEGATED_CHANGE = ContextRule("no", "negated", "forward", 0)


def _scopes(text: str, sentence: Sentence, triggers: Sequence[TriggerMatch]) -> list[_Scope]:
    stops = [t for t in triggers if t.has("terminate")] + _clause_breaks(text, sentence)
    actions = [t for t in triggers if any(r.category.startswith("action:") for r in t.rules)]
    scopes: list[_Scope] = []
    for trig in triggers:
        for rule in trig.rules:
            if rule.category == "pseudo" and trig.text.lower().startswith("no "):
                scopes.append(_Scope(trig.end, trig.end, trig, _NEGATED_CHANGE))
            if rule.category in ("terminate", "pseudo"):
                continue
            barriers = actions if rule.category.startswith("action:") else stops
            if rule.direction in ("forward", "bidirectional"):
                end = min([b.start for b in barriers if b.start >= trig.end] + [sentence.end])
                end = _forward_limit(text, trig.end, end, rule.window)
                scopes.extend(_forward_scopes(text, trig, rule, end))
            if rule.direction in ("backward", "bidirectional"):
                start = max([b.end for b in barriers if b.end <= trig.start] + [sentence.start])
                start = _backward_limit(text, start, trig.start, rule.window)
                scopes.append(_Scope(start, trig.start, trig, rule))
    return scopes


# "switched from A to B": A is stopped and B started.
_SWITCH_FROM = re.compile(r"(?:switch|switched|change|changed|convert|converted)\s+from$", re.I)
_TO = re.compile(r"(?<![\w-])to(?![\w-])", re.IGNORECASE)
_SWITCH_TO_RULE = ContextRule("to", "action:start", "forward", 6)


def _forward_scopes(text: str, trig: TriggerMatch, rule: ContextRule, end: int) -> list[_Scope]:
    if rule.category != "action:stop" or not _SWITCH_FROM.search(" ".join(trig.text.split())):
        return [_Scope(trig.end, end, trig, rule)]
    to = _TO.search(text, trig.end, end)
    if to is None:
        return [_Scope(trig.end, end, trig, rule)]
    switch_to = TriggerMatch(to.start(), to.end(), to.group(0), (_SWITCH_TO_RULE,))
    return [
        _Scope(trig.end, to.start(), trig, rule),
        _Scope(to.end(), _forward_limit(text, to.end(), end, 6), switch_to, _SWITCH_TO_RULE),
    ]


def apply_context(
    entities: list[Entity],
    text: str,
    sentences: list[Sentence],
    triggers: list[TriggerMatch] | None = None,
) -> None:
    """Set each entity's assertion flags and, for medications, its action, in place.

    Parameters
    ----------
    entities : list of Entity
        Entities with ``sentence_index`` already set (−1 for text outside any sentence).
    text : str
        The analysed note.
    sentences : list of Sentence
        The note's sentences, in order.
    triggers : list of TriggerMatch, optional
        Trigger phrases already found in ``text`` (by the pipeline's :class:`TriggerMatcher`);
        found here when omitted.
    """
    if triggers is None:
        triggers = find_triggers(text)
    starts = [t.start for t in triggers]
    scopes_by_sentence: dict[int, list[_Scope]] = {}
    for entity in entities:
        idx = entity.sentence_index
        if idx < 0 or idx >= len(sentences):
            continue
        if idx not in scopes_by_sentence:
            sent = sentences[idx]
            lo = bisect.bisect_left(starts, sent.start)
            hi = bisect.bisect_left(starts, sent.end)
            inside = [t for t in triggers[lo:hi] if t.end <= sent.end]
            scopes_by_sentence[idx] = _scopes(text, sent, inside)
        _assert(entity, scopes_by_sentence[idx])


def _assert(entity: Entity, scopes: list[_Scope]) -> None:
    best_action: _Scope | None = None
    for scope in scopes:
        if not scope.covers(entity):
            continue
        category = scope.rule.category
        if category in ASSERTION_CATEGORIES:
            setattr(entity, category, True)
        elif (
            category.startswith("action:")
            and entity.label == "medication"
            and (best_action is None or scope.distance(entity) < best_action.distance(entity))
        ):
            best_action = scope
    if best_action is not None:
        entity.action = medication_action(best_action.rule.category)


def medication_action(category: str) -> MedicationAction | None:
    """The medication action named by a rule category such as ``"action:start"``."""
    name = category.removeprefix("action:")
    if name in _ACTIONS:
        return cast(MedicationAction, name)
    return None
