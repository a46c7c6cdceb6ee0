"""Slots: places in released text where two ways of writing say the same thing, one bit each.

Every partner receives the same report, except that at each slot its copy shows one of two
equivalent forms, chosen by the partner's code word (``liaison.fingerprint.tardos``). When
text leaks, :func:`read_bits` aligns it to the original and reads which form each slot shows.

Slot kinds (bit 0 / bit 1), and why neither form changes what the text says
----------------------------------------------------------------------------

- ``spelling`` (defence/defense, co-operation/cooperation, organise/organize, centre/center,
  per cent/percent, refuelling/refueling): two national spellings of one word. Curated in
  ``variants.toml``; families (-ise/-ize, -our/-or, -re/-er, -ll-/-l-) are stems x endings
  listed there, never a suffix regex, so "advise" or "comprise" never match. A pair whose
  second form has another sense (program, license, practice, meter) is found one way only.
- ``compound`` (counter-terrorism/counterterrorism, intelligence-sharing/intelligence sharing,
  re-evaluate/reevaluate): the same compound hyphenated, open or closed. Curated.
- ``synonym`` (amongst/among, towards/toward, whilst/while, although->though, in order
  to->to, in spite of/despite): function words that are the same word in every context the
  rule admits ("while" not after "a"/"the", not before "away"); one-way pairs where the
  short form has other uses. No thesaurus: content words never change.
- ``contraction`` (do not/don't, will not/won't, cannot/can't; it is->it's before a word):
  a contraction has exactly one expansion; "'s" forms are never expanded (is or has?).
- ``that-omission`` ("said that the" -> "said the"): the complementiser after verbs of saying
  and believing is optional; only before a word that opens a clause, one way.
- ``serial-comma`` ("A, B and C" / "A, B, and C"): the comma before the last item of a list
  of three or more. Items are one to three words without a pronoun, auxiliary, conjunction,
  preposition or "including" (which would make them clauses or phrases). No slot where a number
  word announces the items ("his two goals, peace and prosperity") or the last item is closed
  by a comma (a parenthesis); where any later item is capitalised, all three must be names the
  entity extractor knows, so an appositive ("its allies, the U.S. and Britain") never becomes a
  list and "Bosnia and Herzegovina" is never split. A lower-case appositive at the end of a
  sentence with no such cue still looks like a list: the one residual risk of this kind.
- ``intro-comma`` ("Meanwhile, the" / "Meanwhile the"): the optional comma after a sentence
  adverb that can be read no other way (not "Still", "However", "Today").
- ``dash`` (" – " / " — "; "—" / " — "; " - " / " – "): a parenthetical dash between words,
  en or em, spaced or closed; never a hyphen or an en dash inside a word ("Canada–US").
- ``apostrophe`` (' / ’) in a possessive or contraction ending ('s, 't, 're, 've, 'll, 'd, 'm).
- ``quote-style`` ("..." / “...”): the marks of a double quotation, both at once; the quoted
  words are protected and never change.
- ``clause-comma`` (", but they" -> " but they"): the comma before "but" joining two clauses,
  only before a subject pronoun (he, she, we, they, I, there) and only removed: before a noun
  "but" may mean "except" ("everyone but the generals"), and an added comma would change that.
- ``day-on`` ("said on Tuesday" -> "said Tuesday"): the preposition before a weekday, only
  after verbs (in ``variants.toml``) whose object is never a day, not before a possessive, and
  only removed ("spent Thursday" is not "spent on Thursday").
- ``attribution`` ('," Trudeau said.' / '," said Trudeau.'): the speaker (a name of one or
  two words, or "the" and one or two words) and a verb of saying, in either order, right after
  a quotation and only where the sentence ends there ('said Sokolsky, a professor' would lose
  its appositive's subject). Never a pronoun ("said he" is archaic). The name's characters
  never change; they move round the verb, and the reader anchors on them.
- ``date`` ("May 25, 2017" / "25 May 2017"): one day written month first or day first, with
  its year; the day, month and year are the same.
- ``number`` (two/2 ... nine/9): a small count in running text. The value is the same, so this
  is a change of notation, not of a number's value; it is not a slot before a unit, percent,
  multiplier or time ("2 per cent", "3 million", "5 pm"), after a label ("Article 5", "level
  3", "at 5") or a capitalised word, at the start of a sentence, or touching other digits or
  punctuation ("13,000", "1.4", "two-thirds"). "one" is never a slot ("one day" is an idiom).

The table also has one-way function-word pairs: "all of the" -> "all the" (and both, half),
"upon" -> "on" (not after "once").

Word slots become slots only in lower case (a capitalised "Defence" mid-sentence is a name);
synonyms and contractions may also start a sentence and keep its capital.

Protected spans (no slot changes a character inside them): quoted words (double quotes,
straight or curly, and single quotes that clearly quote; an unbalanced quote protects the rest
of its line), names the entity extractor (``liaison.ingest.entities.extract``) finds, in every
spelling it reports, runs of capitalised words ("Minister of National Defence"), URLs, e-mail
addresses, STIX ids, hashes, IP addresses, code in backticks, and any token mixing letters and
digits or holding ``_/\\@=#`` or an inner ``.``, ``:`` or ``,`` between word characters
(domains, file names, CVE ids, "13,000", "1.29%"). Digits change only in ``number`` slots.

Determinism: :func:`find_slots` depends only on the text, ``variants.toml`` and the gazetteer.
An investigator must find the slots of an old release with the same table and gazetteer it
was fingerprinted with: changing either changes where slots are.

Reading (:func:`read_bits`): word tokens of the leak are aligned to the original's word tokens
outside the characters slots change (``difflib.SequenceMatcher``, longest blocks first; a long
stretch of the leak left out is aligned again on its own, for paragraphs moved when copies were
stitched). Between two aligned tokens the slots' variants are compared with the leaked text by
edit distance, jointly for slots sharing that gap. A slot reads 0 or 1 when one variant is
strictly closer and the gap resembles the original; otherwise, or outside the leak, None.
Quote, apostrophe and dash slots read None when the leak was visibly retyped or autocorrected
(the original's aligned stretch has three or more such marks that no slot changes, and the
leak has none of them left): they would show the normaliser's style, not a copy's bits.
"""

from __future__ import annotations

import re
import tomllib
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import Match, SequenceMatcher
from functools import cache, lru_cache
from importlib.resources import files
from itertools import pairwise, product
from typing import Any


@dataclass(frozen=True)
class Slot:
    index: int  # position in document order (0, 1, 2, ...)
    start: int  # span in the original text
    end: int
    kind: str  # "spelling", "serial-comma", "dash", "quote-style", "number", ...
    variants: tuple[str, str]  # the text for bit 0 and for bit 1; one is the original's


# --- the curated table (variants.toml) --------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    kind: str
    pair: tuple[str, str]  # lower case, straight apostrophes
    not_after: frozenset[str] = frozenset()
    not_before: frozenset[str] = frozenset()
    word_after: bool = False


@dataclass(frozen=True)
class _Table:
    forms: dict[str, tuple[_Rule, int]]  # form -> its rule and which side of the pair it is
    longest: int  # most tokens in a form
    # A form's first word -> most tokens in a form starting with it, so that only those
    # runs are tried (the words of a text are looked up one by one).
    first_words: dict[str, int]
    that_verbs: frozenset[str]
    that_subjects: frozenset[str]
    intro_words: tuple[str, ...]
    day_on_after: frozenset[str]
    units: frozenset[str]
    number_labels: frozenset[str]
    not_items: frozenset[str]
    appositive_cues: frozenset[str]


def _key(text: str) -> str:
    return text.lower().replace("’", "'")


@cache
def _table() -> _Table:
    text = files("liaison.fingerprint").joinpath("variants.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    forms: dict[str, tuple[_Rule, int]] = {}

    def add(rule: _Rule, side: int) -> None:
        form = rule.pair[side]
        if form in forms:
            raise ValueError(f"variants.toml: {form!r} is listed twice")
        forms[form] = (rule, side)

    for family in data["family"]:
        for stem in family["stems"]:
            stem_a, stem_b = (stem, stem) if isinstance(stem, str) else stem
            for ending in family["endings"]:
                end_a, end_b = (ending, ending) if isinstance(ending, str) else ending
                rule = _Rule(family["kind"], (stem_a + end_a, stem_b + end_b))
                add(rule, 0)
                add(rule, 1)
    for entry in data["pairs"]:
        context: dict[str, Any] = {
            "not_after": frozenset(entry.get("not_after", ())),
            "not_before": frozenset(entry.get("not_before", ())),
            "word_after": entry.get("word_after", False),
        }
        for a, b in entry.get("pairs", ()):
            rule = _Rule(entry["kind"], (a, b), **context)
            add(rule, 0)
            add(rule, 1)
        for a, b in entry.get("one_way", ()):
            add(_Rule(entry["kind"], (a, b), **context), 0)
    first_words: dict[str, int] = {}
    for form in forms:
        words = _WORD.findall(form)
        first_words[words[0]] = max(first_words.get(words[0], 1), len(words))
    return _Table(
        forms=forms,
        longest=max(len(_WORD.findall(form)) for form in forms),
        first_words=first_words,
        that_verbs=frozenset(data["that_omission"]["verbs"]),
        that_subjects=frozenset(data["that_omission"]["subjects"]),
        intro_words=tuple(data["intro_comma"]["words"]),
        day_on_after=frozenset(data["day_on"]["after"]),
        units=frozenset(data["numbers"]["units"]),
        number_labels=frozenset(data["numbers"]["before"]),
        not_items=frozenset(data["serial_comma"]["not_items"]),
        appositive_cues=frozenset(data["serial_comma"]["appositive_cues"]),
    )


# --- protected spans --------------------------------------------------------------------------

_PATTERNS = re.compile(
    r"\b(?:https?|ftp)://\S+|\bwww\.\S+"  # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|\b[a-z][a-z0-9-]*--[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}"  # STIX ids
    r"|\b[0-9a-fA-F]{32,}\b"  # hashes
    r"|\b\d{1,3}(?:\.\d{1,3}){3}(?:/\d+)?\b"  # IPv4
    r"|\b(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\b"  # IPv6
    r"|```.*?```|`[^`\n]+`",  # code
    re.DOTALL,
)
_TECHNICAL = re.compile(r"[_/\\@=<>{}|#~^*`]|\d[^\W\d_]|[^\W\d_]\d|\w[.:,]\w")
_CAPITALISED = (  # "U.S.", "Sec.-Gen.", "Macdonald-Laurier"; not the full stop after a name
    r"(?:(?:[A-Z]\.){2,}|(?:Sec|Gen|Lt|Col|Maj|Mr|Mrs|Ms|Dr|Prof|St)\.(?:-[A-Z][a-z]*\.)?"
    r"|[A-Z][\w'’&-]*)"
)
_CAPITALISED_RUN = re.compile(
    rf"{_CAPITALISED}(?: (?:(?:of|for|de|du|des|la|le|von|van|der|den|al|bin|el)(?: the)? "
    rf"|the )?{_CAPITALISED})+"
)
_SINGLE_QUOTED = re.compile(
    r"(?<![\w'’‘])['‘](?=[^\s'’])(?:[^'‘’\n]|(?<=\w)['’](?=\w))+?(?<=\S)['’](?!\w)"
)
_QUOTE_OPENS_AFTER = " \t\n([{—–-/"
_QUOTE_CLOSES_BEFORE = " \t\n.,;:!?)]}—–-"


_STRAIGHT_QUOTE = re.compile('"')
_CURLY_QUOTE = re.compile("[“”]")


@dataclass
class _Quotes:
    protected: list[tuple[int, int]]
    pairs: list[tuple[int, int]]  # positions of the opening and closing mark


def _quotations(text: str) -> _Quotes:
    quotes = _Quotes([], [])
    start = 0
    for line in text.split("\n"):
        end = start + len(line)
        _curly_quotes(text, start, end, quotes)
        marks = [m.start() for m in _STRAIGHT_QUOTE.finditer(text, start, end)]
        if len(marks) % 2:
            quotes.protected.append((marks[0], end))
        else:
            for opening, closing in zip(marks[::2], marks[1::2], strict=True):
                quotes.pairs.append((opening, closing))
                quotes.protected.append((opening + 1, closing))
        start = end + 1
    quotes.protected += [m.span() for m in _SINGLE_QUOTED.finditer(text)]
    return quotes


def _curly_quotes(text: str, start: int, end: int, quotes: _Quotes) -> None:
    opening: int | None = None
    for m in _CURLY_QUOTE.finditer(text, start, end):
        j = m.start()
        if m.group() == "“":
            if opening is None:
                opening = j
        else:
            if opening is None:  # a quotation continued from an earlier line
                quotes.protected.append((start, j))
            else:
                quotes.pairs.append((opening, j))
                quotes.protected.append((opening + 1, j))
                opening = None
    if opening is not None:
        quotes.protected.append((opening + 1, end))


def _entity_spans(text: str) -> list[tuple[int, int]]:
    # spaCy loads only when slots are found: a server delivering prepared slots never needs it.
    from liaison.ingest.entities import extract

    entities, _ = extract(text)
    names = {n for e in entities for n in (e.name, *e.aliases) if n.strip()}
    if not names:
        return []
    ordered = sorted(names, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, ordered)) + r")(?!\w)")
    return [m.span() for m in pattern.finditer(text)]


def _technical_spans(text: str) -> Iterator[tuple[int, int]]:
    for m in re.finditer(r"\S+", text):
        token = m.group()
        core = token.lstrip("\"'“‘([{<").rstrip("\"'”’)]}>.,;:!?")
        if core and _TECHNICAL.search(core):
            left = m.start() + len(token) - len(token.lstrip("\"'“‘([{<"))
            yield left, left + len(core)


def protected_spans(text: str) -> list[tuple[int, int]]:
    """The spans of ``text`` no slot may change, sorted and merged."""
    return _protected(text, _entity_spans(text))


def _protected(text: str, entities: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = [
        *_quotations(text).protected,
        *entities,
        *(m.span() for m in _PATTERNS.finditer(text)),
        *(m.span() for m in _CAPITALISED_RUN.finditer(text)),
        *_technical_spans(text),
    ]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


# --- finding slots ----------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_ABBREVIATION = re.compile(r"(?:\b[A-Za-z]\.)+$|\b(?:Mr|Mrs|Ms|Dr|Prof|Gen|Sec|St|Lt|Col|No)\.$")
_FUNCTION_WORDS = frozenset({"synonym", "contraction"})  # may start a sentence
_NUMBERS = {"two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7"}
_NUMBERS |= {"eight": "8", "nine": "9"}
_SMALL_NUMBER = re.compile(
    r"(?<![\w.,:;/$€£¥#%+'’–—-])([2-9]|" + "|".join(_NUMBERS) + r")(?= ([a-z]{2,})(?![\w'’-]))"
)
_DASH = re.compile(
    r"(?<=[\w.,)”\"’'%]) [–—] (?=[\w“\"‘(])"
    r"|(?<=[^\W_])—(?=[^\W_])"
    r"|(?<=[^\W\d_]) - (?=[^\W\d_])"
)
_DASH_VARIANTS = {" – ": (" – ", " — "), " — ": (" – ", " — "), "—": ("—", " — ")}
_DASH_VARIANTS[" - "] = (" - ", " – ")
_APOSTROPHE = re.compile(r"(?<=[^\W\d_])['’](?=(?:s|t|re|ve|ll|d|m)(?!\w))")
_LIST_END = re.compile(r"(,?) (and|or) (?=[^\W\d_])")
_ITEM = r"[^\W\d_][\w'’.&-]*"
_LIST_START = re.compile(rf"(?<![\w'’.&-])({_ITEM}), ({_ITEM}(?: {_ITEM}){{0,2}})$")
_ITEM_WORD = re.compile(_ITEM)
# Subject pronouns only: "but him" or "but the generals" may mean "except".
_CLAUSE_COMMA = re.compile(r"(?<=[^\W\d_]),(?= but (?:he|she|we|they|I|there) [^\W\d_])")
_SPEECH = r"said|says|added|adds|wrote|writes"
_NAME = r"[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)?"
_SPEAKER = rf"(?:{_NAME}(?: {_NAME})?|the [a-z]+(?: [a-z]+)?)"
_ATTRIBUTION = re.compile(
    rf"(?<=[,?!][\"”] )(?:(?P<subject>{_SPEAKER}) (?P<verb>{_SPEECH})"
    rf"|(?P<verb2>{_SPEECH}) (?P<subject2>{_SPEAKER}))(?=[.;](?:\s|$))"
)  # only where the sentence ends: '" said Sokolsky, a professor' must not lose its subject
_NOT_SPEAKERS = frozenset(  # pronouns and determiners: "said he" is archaic, "The" no name
    {"He", "She", "It", "We", "They", "I", "You", "The", "This", "That", "These", "Those"}
    | {"His", "Her", "Its", "Our", "Their", "One", "Some", "Many", "Both", "All"}
)
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December)"
)
_DATE = re.compile(
    rf"(?<![\w,])(?:(?P<month>{_MONTH}) (?P<day>\d{{1,2}}), (?P<year>\d{{4}})"
    rf"|(?P<day2>\d{{1,2}}) (?P<month2>{_MONTH}) (?P<year2>\d{{4}}))(?![\w,.]\w)"
)


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int
    kind: str
    variants: tuple[str, str]
    moved: tuple[int, int] | None = None  # words both variants hold unchanged (a speaker's name)


class _Finder:
    """One text's slot candidates, kind by kind, in order of preference."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.table = _table()
        self.quotes = _quotations(text)
        self.entities = _entity_spans(text)
        self.entity_starts = {start for start, _ in self.entities}
        self.entity_ends = {end for _, end in self.entities}
        self.apostrophe = "’" if text.count("’") > text.count("'") else "'"

    def candidates(self) -> Iterator[_Candidate]:
        yield from self.words()
        yield from self.that_omissions()
        yield from self.numbers()
        yield from self.serial_commas()
        yield from self.intro_commas()
        yield from self.clause_commas()
        yield from self.days()
        yield from self.attributions()
        yield from self.dates()
        for m in _DASH.finditer(self.text):
            yield _Candidate(m.start(), m.end(), "dash", _DASH_VARIANTS[m.group()])
        for m in _APOSTROPHE.finditer(self.text):
            yield _Candidate(m.start(), m.end(), "apostrophe", ("'", "’"))
        yield from self.quote_styles()

    def sentence_start(self, i: int) -> bool:
        text = self.text
        while i > 0 and text[i - 1] in " \t\xa0":
            i -= 1
        if i == 0 or text[i - 1] in "\n\r":
            return True
        while i > 0 and text[i - 1] in "\"”’')]":
            i -= 1
        if i > 0 and text[i - 1] in "!?":
            return True
        return i > 0 and text[i - 1] == "." and not _ABBREVIATION.search(text[max(0, i - 12) : i])

    def word_before(self, i: int) -> str:
        m = re.search(r"([\w'’-]+) $", self.text[max(0, i - 40) : i])
        return _key(m.group(1)) if m else ""

    def word_after(self, i: int) -> str:
        m = re.match(r" ([\w'’-]+)", self.text[i : i + 40])
        return m.group(1) if m else ""

    def words(self) -> Iterator[_Candidate]:
        """Spelling, compound, synonym and contraction pairs from the table."""
        text, table = self.text, self.table
        tokens = list(_WORD.finditer(text))
        i = 0
        while i < len(tokens):
            first = _key(tokens[i].group())
            # Lower case keeps a word one word; where it might not, every run is tried.
            if first.isascii() or _WORD.fullmatch(first):
                longest = table.first_words.get(first, 1)
                if longest == 1 and first not in table.forms and not first.endswith("'s"):
                    i += 1  # most words: in no form
                    continue
            else:
                longest = table.longest
            for n in range(min(longest, len(tokens) - i), 0, -1):
                if n == 1:
                    start, end, key = tokens[i].start(), tokens[i].end(), first
                else:
                    run = tokens[i : i + n]
                    if any(text[a.end() : b.start()] not in (" ", "-") for a, b in pairwise(run)):
                        continue
                    start, end = run[0].start(), run[-1].end()
                    key = _key(text[start:end])
                if n == 1 and key not in table.forms and key.endswith("'s"):
                    key, end = key[:-2], end - 2  # a possessive: "defence's"
                hit = table.forms.get(key)
                if hit is not None:
                    candidate = self.word_slot(start, end, *hit)
                    if candidate is not None:
                        yield candidate
                    i += n - 1
                    break
            i += 1

    def word_slot(self, start: int, end: int, rule: _Rule, side: int) -> _Candidate | None:
        found = self.text[start:end]
        if rule.kind in _FUNCTION_WORDS and "-" in (
            self.text[start - 1 : start],
            self.text[end : end + 1],
        ):
            return None  # "all-the-while" is one word
        if found != found.lower():
            capital = found[0].isupper() and found[1:] == found[1:].lower()
            if not (capital and rule.kind in _FUNCTION_WORDS and self.sentence_start(start)):
                return None
        if self.word_before(start) in rule.not_after or _key(self.word_after(end)) in (
            rule.not_before
        ):
            return None
        if rule.word_after and not re.match(r" [^\W\d_]", self.text[end : end + 2]):
            return None
        other = rule.pair[1 - side]
        apostrophes = [c for c in found if c in "'’"]
        other = other.replace("'", apostrophes[0] if apostrophes else self.apostrophe)
        if found[0].isupper():
            other = other[0].upper() + other[1:]
        variants = (found, other) if side == 0 else (other, found)
        return _Candidate(start, end, rule.kind, variants)

    def that_omissions(self) -> Iterator[_Candidate]:
        verbs = "|".join(sorted(self.table.that_verbs))
        for m in re.finditer(rf"\b(?:{verbs})( that)(?= ([\w'’]+))", self.text):
            subject = m.group(2)
            if (
                _key(subject) in self.table.that_subjects and (subject.islower() or subject == "I")
            ) or m.start(2) in self.entity_starts:
                yield _Candidate(m.start(1), m.end(1), "that-omission", (" that", ""))

    def numbers(self) -> Iterator[_Candidate]:
        text, table = self.text, self.table
        digits = {v: k for k, v in _NUMBERS.items()}
        for m in _SMALL_NUMBER.finditer(text):
            start = m.start()
            if m.group(2) in table.units or self.sentence_start(start):
                continue
            before = re.search(r"(\S+)\s+$", text[max(0, start - 40) : start])
            if before is not None:
                word = before.group(1)
                if word[-1].isdigit() or _key(word.rstrip(".")) in table.number_labels:
                    continue
                if word[0].isupper() and word[-1] not in ",;:(":
                    continue
            found = m.group(1)
            if found.isdigit():
                yield _Candidate(start, m.end(1), "number", (digits[found], found))
            else:
                yield _Candidate(start, m.end(1), "number", (found, _NUMBERS[found]))

    def serial_commas(self) -> Iterator[_Candidate]:
        text, not_items = self.text, self.table.not_items
        for m in _LIST_END.finditer(text):
            head = _LIST_START.search(text, max(0, m.start() - 120), m.start())
            last = _ITEM_WORD.match(text, m.end())
            if head is None or last is None:
                continue
            first, middle = head.group(1), head.group(2)
            words = [first, *middle.split(" "), last.group()]
            if any(_key(w).rstrip(".") in not_items for w in words):
                continue
            first_is_name = head.end(1) in self.entity_ends
            if self.sentence_start(head.start(1)) and not first_is_name:
                continue  # "Still, allies and partners": an introductory word, not an item
            lead = re.findall(r"[\w'’-]+", text[max(0, head.start() - 30) : head.start()])[-3:]
            if any(_key(w) in self.table.appositive_cues for w in lead):
                continue  # "his two goals, peace and prosperity" is one thing named twice
            if re.match(r"(?: [\w'’.-]+){0,2},", text[last.end() : last.end() + 60]):
                continue  # "Its goals, peace and prosperity, were set": a parenthesis
            if any(w[0].isupper() for w in words[1:]):
                names = head.end(2) in self.entity_ends and last.start() in self.entity_starts
                if not (names and first_is_name):
                    continue  # "its allies, the U.S. and Britain" may be an appositive
            conjunction = m.group(2)
            variants = (f" {conjunction}", f", {conjunction}")
            yield _Candidate(m.start(), m.end(2), "serial-comma", variants)

    def intro_commas(self) -> Iterator[_Candidate]:
        words = "|".join(self.table.intro_words)
        for m in re.finditer(rf"\b(?:{words})(, | )(?=[^\W\d_])", self.text):
            if self.sentence_start(m.start()):
                yield _Candidate(m.start(1), m.end(1), "intro-comma", (", ", " "))

    def clause_commas(self) -> Iterator[_Candidate]:
        """The comma before "but" joining two clauses (", but he" -> " but he"); one way, since
        an added comma would change "all but the most" or "anything but"."""
        for m in _CLAUSE_COMMA.finditer(self.text):
            yield _Candidate(m.start(), m.end(), "clause-comma", (",", ""))

    def days(self) -> Iterator[_Candidate]:
        """ "said on Tuesday" -> "said Tuesday": the preposition before a weekday, one way."""
        verbs = "|".join(sorted(self.table.day_on_after))
        for m in re.finditer(rf"\b(?:{verbs}) (on )(?={_WEEKDAY}(?![\w'’]))", self.text):
            yield _Candidate(m.start(1), m.end(1), "day-on", ("on ", ""))

    def attributions(self) -> Iterator[_Candidate]:
        """'," Trudeau said.' / '," said Trudeau.': the speaker and the verb after a quotation,
        in either order. The speaker's words move but never change."""
        for m in _ATTRIBUTION.finditer(self.text):
            subject = m.group("subject") or m.group("subject2")
            if subject.split(" ")[0] in _NOT_SPEAKERS:
                continue
            verb = m.group("verb") or m.group("verb2")
            moved = m.span("subject") if m.group("subject") else m.span("subject2")
            variants = (f"{subject} {verb}", f"{verb} {subject}")
            yield _Candidate(m.start(), m.end(), "attribution", variants, moved)

    def dates(self) -> Iterator[_Candidate]:
        """One day written month first or day first ("May 25, 2017" / "25 May 2017")."""
        for m in _DATE.finditer(self.text):
            month, day, year = (
                (m.group("month"), m.group("day"), m.group("year"))
                if m.group("month")
                else (m.group("month2"), m.group("day2"), m.group("year2"))
            )
            if not 1 <= int(day) <= 31:
                continue
            yield _Candidate(
                m.start(), m.end(), "date", (f"{month} {day}, {year}", f"{day} {month} {year}")
            )

    def quote_styles(self) -> Iterator[_Candidate]:
        text = self.text
        for opening, closing in self.quotes.pairs:
            before = text[opening - 1] if opening else " "
            after = text[closing + 1] if closing + 1 < len(text) else " "
            inner = text[opening + 1 : closing]
            tidy = bool(inner) and inner.strip() == inner
            if tidy and before in _QUOTE_OPENS_AFTER and after in _QUOTE_CLOSES_BEFORE:
                variants = (f'"{inner}"', f"“{inner}”")
                yield _Candidate(opening, closing + 1, "quote-style", variants)


# Large enough to hold the texts of several full TAXII pages (100 objects each): every page
# marks each copy for its partner, and finding the slots costs far more than using them.
@lru_cache(maxsize=2048)
def _find(text: str) -> tuple[Slot, ...]:
    finder = _Finder(text)
    protected = bytearray(len(text))
    for start, end in _protected(text, finder.entities):
        protected[start:end] = b"\x01" * (end - start)
    taken = bytearray(len(text))
    accepted: list[_Candidate] = []
    for c in finder.candidates():
        if c.kind == "quote-style":
            changed: Sequence[int] = (c.start, c.end - 1)
        elif c.moved is not None:
            changed = [i for i in range(c.start, c.end) if not c.moved[0] <= i < c.moved[1]]
        else:
            changed = range(c.start, c.end)
        if any(protected[i] for i in changed) or any(taken[c.start : c.end]):
            continue
        taken[c.start : c.end] = b"\x01" * (c.end - c.start)
        accepted.append(c)
    accepted.sort(key=lambda c: c.start)
    return tuple(Slot(i, c.start, c.end, c.kind, c.variants) for i, c in enumerate(accepted))


def find_slots(text: str) -> list[Slot]:
    """The slots of ``text`` in document order: deterministic, non-overlapping, and never
    inside a protected span (:func:`protected_spans`)."""
    return list(_find(text))


def apply_bits(text: str, slots: Sequence[Slot], bits: Sequence[int]) -> str:
    """``text`` with each slot showing the variant its bit selects: a partner's copy."""
    if len(bits) != len(slots):
        raise ValueError(f"{len(bits)} bits for {len(slots)} slots")
    out: list[str] = []
    at = 0
    for slot, bit in zip(slots, bits, strict=True):
        if bit not in (0, 1):
            raise ValueError(f"bit {bit!r} for slot {slot.index} is neither 0 nor 1")
        if slot.start < at:
            raise ValueError(f"slot {slot.index} overlaps the slot before it or is out of order")
        if text[slot.start : slot.end] not in slot.variants:
            raise ValueError(f"slot {slot.index} does not belong to this text")
        out += [text[at : slot.start], slot.variants[bit]]
        at = slot.end
    out.append(text[at:])
    return "".join(out)


def slot_density(text: str) -> float:
    """Slots per 1,000 words (runs of non-space characters)."""
    words = len(text.split())
    return 1000 * len(find_slots(text)) / words if words else 0.0


# --- reading a leak ---------------------------------------------------------------------------

TOKEN = re.compile(r"[^\W_]+")
"""The words :func:`read_bits` aligns; an investigation shingles a leak with the same."""
_MOST_JOINT = 6  # slots in one gap read jointly (2**6 candidates); more are read one by one
_TYPOGRAPHIC = frozenset({"apostrophe", "quote-style", "dash"})
_CURLY = "’‘“”–—"
_STRAIGHT = "'\""
_MOVED = 12  # leaked words the first alignment leaves out that are aligned again on their own


@dataclass(frozen=True)
class _Piece:
    slot: int  # position in the slots given
    start: int  # the characters the slot changes, in the original
    end: int
    texts: tuple[str, str]  # what stands there for bit 0 and for bit 1


def _pieces(k: int, slot: Slot, original: str) -> list[_Piece]:
    a, b = slot.variants
    if slot.kind == "quote-style":  # two marks far apart: read each where it stands
        return [
            _Piece(k, slot.start, slot.start + 1, (a[0], b[0])),
            _Piece(k, slot.end - 1, slot.end, (a[-1], b[-1])),
        ]
    if slot.kind == "attribution":  # the verb before or after the name; the name is anchored
        verb = b.split(" ", 1)[0]
        before = len(verb) + 1 if original[slot.start : slot.end] == b else 0
        after = len(verb) + 1 - before
        return [
            _Piece(k, slot.start, slot.start + before, ("", f"{verb} ")),
            _Piece(k, slot.end - after, slot.end, (f" {verb}", "")),
        ]
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    texts = (a[prefix : len(a) - suffix], b[prefix : len(b) - suffix])
    return [_Piece(k, slot.start + prefix, slot.end - suffix, texts)]


_Anchor = tuple[int, int, int, int]  # an aligned token: original start, end; leaked start, end


def _alignments(original: str, pieces: Sequence[_Piece], leaked: str) -> list[list[_Anchor]]:
    """Aligned word tokens, each list in the order of both texts. The first aligns the whole
    leak, with the texts' ends added where the leak starts or ends as the original does; each
    further list aligns a long stretch of the leak the first left out (a paragraph moved)."""
    changed = bytearray(len(original) + 1)
    cut = bytearray(len(original) + 1)  # zero-width pieces: no token may span them
    for p in pieces:
        if p.end > p.start:
            changed[p.start : p.end] = b"\x01" * (p.end - p.start)
        else:
            cut[p.start] = 1
    ours = [
        m
        for m in TOKEN.finditer(original)
        if not any(changed[m.start() : m.end()]) and not any(cut[m.start() + 1 : m.end()])
    ]
    theirs = list(TOKEN.finditer(leaked))
    our_words = [m.group().lower() for m in ours]
    their_words = [m.group().lower() for m in theirs]

    def align(lo: int, hi: int, least: int) -> tuple[list[_Anchor], list[Match]]:
        matcher = SequenceMatcher(None, our_words, their_words[lo:hi], autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size >= least]
        anchors = [
            (*ours[b.a + k].span(), *theirs[lo + b.b + k].span())
            for b in blocks
            for k in range(b.size)
        ]
        return anchors, blocks

    main, blocks = align(0, len(theirs), 1)
    if not blocks:
        return []
    if blocks[0].a <= 2 and blocks[0].b <= 2:
        main.insert(0, (0, 0, 0, 0))
    last = blocks[-1]
    if len(ours) - (last.a + last.size) <= 2 and len(theirs) - (last.b + last.size) <= 2:
        main.append((len(original), len(original), len(leaked), len(leaked)))
    found = [main]
    at = 0
    for b in [*blocks, Match(len(ours), len(theirs), 0)]:
        if b.b - at >= _MOVED:
            moved, _ = align(at, b.b, 3)
            if moved:
                found.append(moved)
        at = b.b + b.size
    return found


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def _distance(a: str, b: str) -> int:
    """Levenshtein distance; the common prefix and suffix do not change it."""
    while a and b and a[0] == b[0]:
        a, b = a[1:], b[1:]
    while a and b and a[-1] == b[-1]:
        a, b = a[:-1], b[:-1]
    if not a or not b:
        return len(a) + len(b)
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def _read_gap(
    original: str, lo: int, hi: int, pieces: Sequence[_Piece], gap: str
) -> dict[int, list[int]] | None:
    """For each slot with pieces in ``original[lo:hi]``, the least distance to the leaked
    ``gap`` with the slot at bit 0 and at bit 1; None when the gap does not resemble it."""
    slots = sorted({p.slot for p in pieces})
    shown = [0 if original[p.start : p.end] == p.texts[0] else 1 for p in pieces]

    def candidate(bit_of: dict[int, int]) -> str:
        out, at = [], lo
        for p, own in zip(pieces, shown, strict=True):
            out += [original[at : p.start], p.texts[bit_of.get(p.slot, own)]]
            at = p.end
        out.append(original[at:hi])
        return _squash("".join(out))

    if len(slots) <= _MOST_JOINT:
        every = product((0, 1), repeat=len(slots))
        choices = [dict(zip(slots, bits, strict=True)) for bits in every]
    else:
        choices = [{k: bit} for k in slots for bit in (0, 1)]
    best = {k: [len(gap) + hi - lo + 1] * 2 for k in slots}
    least = None
    for bit_of in choices:
        d = _distance(candidate(bit_of), gap)
        least = d if least is None else min(least, d)
        for k, bit in bit_of.items():
            best[k][bit] = min(best[k][bit], d)
    if least is None or least > 2 + (hi - lo) // 4:
        return None
    return best


def read_bits(original: str, slots: Sequence[Slot], leaked: str) -> list[int | None]:
    """The bit each slot of ``original`` shows in ``leaked`` (an excerpt, retyped, with typos,
    or stitched from several copies): 0 or 1 where the leak shows one variant more closely
    than the other, None where the slot is outside the leak or unreadable."""
    for slot in slots:
        if original[slot.start : slot.end] not in slot.variants:
            raise ValueError(f"slot {slot.index} does not belong to this text")
    pieces = sorted(
        (p for k, s in enumerate(slots) for p in _pieces(k, s, original)), key=lambda p: p.start
    )
    evidence: dict[int, list[int]] = {}
    alignments = _alignments(original, pieces, leaked)
    for anchors in alignments:
        _read_alignment(original, pieces, leaked, anchors, evidence)
    lost = bool(alignments) and _typography_lost(original, pieces, leaked, alignments[0])
    bits: list[int | None] = []
    for k, slot in enumerate(slots):
        zero, one = evidence.get(k, (0, 0))
        if zero == one or (lost and slot.kind in _TYPOGRAPHIC):
            bits.append(None)
        else:
            bits.append(int(one < zero))
    return bits


def _typography_lost(
    original: str, pieces: Sequence[_Piece], leaked: str, anchors: Sequence[_Anchor]
) -> bool:
    """Whether the leak was retyped or autocorrected: the original's aligned stretch shows at
    least three curly quotes, apostrophes or dashes (or straight quotes and apostrophes) that
    no slot changes, so every copy shows them, and the leak shows none of that class at all.
    Its quote, apostrophe and dash slots then read the normaliser's style, not a copy's bits."""
    lo, hi = anchors[0][0], anchors[-1][1]
    in_piece = bytearray(hi - lo)
    for p in pieces:
        if lo <= p.start and p.end <= hi:
            in_piece[p.start - lo : p.end - lo] = b"\x01" * (p.end - p.start)
    kept = "".join(c for c, changed in zip(original[lo:hi], in_piece, strict=True) if not changed)
    for marks in (_CURLY, _STRAIGHT):
        if sum(kept.count(c) for c in marks) >= 3 and not any(c in leaked for c in marks):
            return True
    return False


def _read_alignment(
    original: str,
    pieces: Sequence[_Piece],
    leaked: str,
    anchors: Sequence[_Anchor],
    evidence: dict[int, list[int]],
) -> None:
    """Add to ``evidence`` (slot -> summed distances at bit 0 and at bit 1) what the gaps
    between consecutive anchors show."""
    ends = [a[1] for a in anchors]
    gaps: dict[int, list[_Piece]] = {}
    for p in pieces:
        k = bisect_right(ends, p.start) - 1
        if 0 <= k < len(anchors) - 1 and anchors[k + 1][0] >= p.end:
            gaps.setdefault(k, []).append(p)
    for k, in_gap in gaps.items():
        lo, hi = anchors[k][1], anchors[k + 1][0]
        gap = _squash(leaked[anchors[k][3] : anchors[k + 1][2]])
        if len(gap) > 3 * (hi - lo) + 30:
            continue
        for slot, (zero, one) in (_read_gap(original, lo, hi, in_gap, gap) or {}).items():
            total = evidence.setdefault(slot, [0, 0])
            total[0] += zero
            total[1] += one


# --- which STIX properties carry slots --------------------------------------------------------

_TEXT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "report": ("name", "description"),
    "note": ("abstract", "content"),
    "opinion": ("explanation",),
}
_DESCRIBED = frozenset(
    {
        "attack-pattern",
        "campaign",
        "course-of-action",
        "grouping",
        "identity",
        "incident",
        "indicator",
        "infrastructure",
        "intrusion-set",
        "location",
        "malware",
        "relationship",
        "sighting",
        "threat-actor",
        "tool",
        "vulnerability",
    }
)


def text_fields(obj: dict[str, Any]) -> list[str]:
    """The properties of a STIX object whose text carries slots, among those it has: prose
    only. Names other than a report's are proper names (of a campaign, a malware, a person)
    and stay; patterns, hashes, ids, timestamps and external references are never text."""
    kind = obj.get("type", "")
    names = _TEXT_PROPERTIES.get(kind, ("description",) if kind in _DESCRIBED else ())
    return [name for name in names if isinstance(obj.get(name), str) and obj[name]]
