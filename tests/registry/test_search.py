"""The search grammar, the Q builder, order_by, page tokens, max_results and the LIKE lookups."""

from __future__ import annotations

import base64
import datetime as dt
import random
import sqlite3

import pytest
from django.db.models import Q
from django.db.utils import ConnectionHandler

from kernel.errors import ErrorCode, RegistryError
from kernel.paging import check_max_results, decode_page_token, encode_page_token
from registry.lookups import like_matches, like_to_glob, normalize_like_pattern
from registry.models import (
    INDEXED_TAG_VALUE_MAX_LENGTH,
    TAG_VALUE_MAX_LENGTH,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from registry.search import (
    MAX_CLAUSES,
    MAX_IN_LIST_VALUES,
    MAX_LIKE_PATTERN_LENGTH,
    MAX_LIKE_WILDCARDS,
    Clause,
    filter_q,
    parse_filter,
    parse_order_by,
)

RM = "registered_model"
MV = "model_version"
PROMPT = "mlflow.prompt.is_prompt"


def attr(key, comparator, value):
    return Clause(kind="attribute", key=key, comparator=comparator, value=value)


def tag(key, comparator, value):
    return Clause(kind="tag", key=key, comparator=comparator, value=value)


def invalid(message_part: str):
    """Expect an INVALID_PARAMETER_VALUE RegistryError whose message contains the text."""
    return pytest.raises(RegistryError, match=_escape(message_part))


def _escape(text: str) -> str:
    import re

    return re.escape(text)


# ---------------------------------------------------------------------------------------------
# parse_filter: accepted filters


@pytest.mark.parametrize("empty", [None, "", " ", "\t\n  "])
@pytest.mark.parametrize("entity", [RM, MV])
def test_empty_filter_gives_no_clauses(empty, entity):
    assert parse_filter(empty, entity=entity) == []


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'a'", [attr("name", "=", "a")]),
        ('name = "a"', [attr("name", "=", "a")]),
        ("name='a'", [attr("name", "=", "a")]),
        ("attribute.name != 'a'", [attr("name", "!=", "a")]),
        ("name LIKE 'sk%'", [attr("name", "LIKE", "sk%")]),
        ("name like 'sk%'", [attr("name", "LIKE", "sk%")]),
        ("name iLike '%SK%'", [attr("name", "ILIKE", "%SK%")]),
        ("name IN ('a', \"b\")", [attr("name", "IN", ("a", "b"))]),
        ("name in('a')", [attr("name", "IN", ("a",))]),
        ("name NOT IN ( 'a' ,'b' )", [attr("name", "NOT IN", ("a", "b"))]),
        ("name not   in ('a')", [attr("name", "NOT IN", ("a",))]),
        ("name = 'it''s'", [attr("name", "=", "it's")]),
        ('name = "say ""hi"""', [attr("name", "=", 'say "hi"')]),
        ("name = ''", [attr("name", "=", "")]),
        ("name = 'a AND b'", [attr("name", "=", "a AND b")]),
        ("name LIKE 'a\\_b'", [attr("name", "LIKE", "a\\_b")]),
        ("name = 'ünïcødé ✓'", [attr("name", "=", "ünïcødé ✓")]),
        ("tags.team = 'a'", [tag("team", "=", "a")]),
        ("tag.team != 'a'", [tag("team", "!=", "a")]),
        ("tags.x.y = 'v'", [tag("x.y", "=", "v")]),
        ("tags.my-key = 'v'", [tag("my-key", "=", "v")]),
        ("tags.`x y` LIKE '%v'", [tag("x y", "LIKE", "%v")]),
        ('tags."x y" ILIKE "%v"', [tag("x y", "ILIKE", "%v")]),
        ("tags.`a``b` = 'v'", [tag("a`b", "=", "v")]),
        ("tag.`mlflow.prompt.is_prompt` != 'true'", [tag(PROMPT, "!=", "true")]),
        ("tags.mlflow.prompt.is_prompt = 'true'", [tag(PROMPT, "=", "true")]),
        (
            "name LIKE 'sk%' AND tags.team != 'b' AND tag.`mlflow.prompt.is_prompt` != 'true'",
            [attr("name", "LIKE", "sk%"), tag("team", "!=", "b"), tag(PROMPT, "!=", "true")],
        ),
        (
            "name = 'a' and tags.t = 'b'  AnD name != 'c'",
            [attr("name", "=", "a"), tag("t", "=", "b"), attr("name", "!=", "c")],
        ),
        ("  name = 'a'  ", [attr("name", "=", "a")]),
    ],
)
def test_registered_model_filters(filter_string, expected):
    assert parse_filter(filter_string, entity=RM) == expected


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'm'", [attr("name", "=", "m")]),
        ("run_id IN ('r1', 'r2')", [attr("run_id", "IN", ("r1", "r2"))]),
        ("run_id NOT IN ('r1')", [attr("run_id", "NOT IN", ("r1",))]),
        ("run_id ILIKE 'R%'", [attr("run_id", "ILIKE", "R%")]),
        ("source_path = 's3://b/p'", [attr("source_path", "=", "s3://b/p")]),
        ("source_path LIKE 's3://b/%'", [attr("source_path", "LIKE", "s3://b/%")]),
        ("version_number = 1", [attr("version_number", "=", 1)]),
        ("version_number != 1", [attr("version_number", "!=", 1)]),
        ("version_number>=2", [attr("version_number", ">=", 2)]),
        ("version_number > 2", [attr("version_number", ">", 2)]),
        ("version_number < 2", [attr("version_number", "<", 2)]),
        ("version_number <= 2", [attr("version_number", "<=", 2)]),
        ("version_number = '3'", [attr("version_number", "=", 3)]),
        ('version_number = "3"', [attr("version_number", "=", 3)]),
        ("version_number = -1", [attr("version_number", "=", -1)]),
        (
            "name = 'sk-model' AND version_number >= 2",
            [attr("name", "=", "sk-model"), attr("version_number", ">=", 2)],
        ),
        ("tags.t = 'v'", [tag("t", "=", "v")]),
        ("attribute.run_id = 'r'", [attr("run_id", "=", "r")]),
    ],
)
def test_model_version_filters(filter_string, expected):
    assert parse_filter(filter_string, entity=MV) == expected


def test_clause_is_frozen():
    clause = parse_filter("name = 'a'", entity=RM)[0]
    with pytest.raises(AttributeError):
        clause.value = "b"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# parse_filter: refused filters

NO_OR = "Invalid clause(s) in filter string: "


@pytest.mark.parametrize(
    ("entity", "filter_string", "message"),
    [
        # Grouping and boolean operators other than AND.
        (RM, "name = 'a' OR name = 'b'", NO_OR + "OR name = 'b'"),
        (RM, "(name = 'a')", NO_OR + "(name = 'a')"),
        (RM, "name = 'a' AND (name = 'b')", NO_OR + "(name = 'b')"),
        (RM, "NOT name = 'a'", NO_OR + "NOT name = 'a'"),
        (RM, "name = 'a' name = 'b'", NO_OR + "name = 'b'"),
        (RM, "name = 'a'; DROP TABLE x", NO_OR + "; DROP TABLE x"),
        (RM, "name = 'a' AND", "expected a clause after the final AND"),
        (RM, "AND name = 'a'", NO_OR + "AND name = 'a'"),
        # Attributes and entity types.
        (RM, "foo = 'x'", "Invalid attribute key 'foo' specified. Valid keys are '{'name'}'"),
        (RM, "creation_timestamp > 1", "Invalid attribute key 'creation_timestamp' specified."),
        (RM, "run_id = 'x'", "Invalid attribute key 'run_id' specified."),
        (RM, "attribute.foo = 'x'", "Invalid attribute key 'foo' specified."),
        (
            MV,
            "current_stage = 'Production'",
            "Invalid attribute key 'current_stage' specified. Valid keys are "
            "'{'name', 'run_id', 'source_path', 'version_number', 'model_id', 'artifact_digest'}'",
        ),
        (
            RM,
            "params.x = 'a'",
            "Invalid entity type 'params'. Valid entity types are ('attribute', 'tag', 'tags')",
        ),
        (RM, "NAME = 'a'", "Invalid attribute key 'NAME' specified."),
        (RM, "tags. = 'a'", "expected a key after 'tags.'"),
        (RM, "tags.`` = 'a'", "the key after 'tags.' must not be empty"),
        (RM, "tags.`abc = 'a'", "unterminated quoted key starting at position 5"),
        (RM, "'name' = 'a'", "expected an attribute or a tag"),
        (RM, "= 'a'", "expected an attribute or a tag"),
        # Comparators.
        (RM, "name", "expected a comparator after 'name', found the end of the filter"),
        (RM, "name > 'a'", "Invalid comparator '>' for attribute 'name'."),
        (RM, "name == 'a'", "Invalid comparator '=='"),
        (RM, "name <> 'a'", "Invalid comparator '<>'"),
        (RM, "name NOT LIKE 'a'", "Invalid comparator 'NOT LIKE'"),
        (RM, "name NOT 'a'", "Invalid comparator 'NOT'"),
        (RM, "name RLIKE 'a'", "Invalid comparator 'RLIKE'"),
        (RM, "name IS NULL", "IS NULL / IS NOT NULL is not supported"),
        (RM, "tags.t IS NOT NULL", "IS NULL / IS NOT NULL is not supported"),
        (RM, "tags.t IN ('a')", "Invalid comparator 'IN' for tag 't'."),
        (RM, "tags.t NOT IN ('a')", "Invalid comparator 'NOT IN' for tag 't'."),
        (RM, "tags.t >= 'a'", "Invalid comparator '>=' for tag 't'."),
        (MV, "source_path IN ('a')", "Invalid comparator 'IN' for attribute 'source_path'."),
        (MV, "version_number LIKE '1'", "Invalid comparator 'LIKE' for attribute 'version_number'"),
        (MV, "version_number IN (1)", "Invalid comparator 'IN' for attribute 'version_number'"),
        # Values.
        (RM, "name =", "expected a value after 'name ='"),
        (RM, "name = 'abc", "unterminated string starting at position 7: 'abc"),
        (RM, 'name = "abc', 'unterminated string starting at position 7: "abc'),
        (RM, "name = 'it''s", "unterminated string"),
        (RM, "name = abc", "Parameter value is either not quoted or unidentified quote types"),
        (RM, "name = `abc`", "unidentified quote types used for string value `abc`"),
        (RM, "name = 5", "Expected a quoted string value for 'name' (e.g. 'my-value'). Got value"),
        (RM, "tags.t = 1.5", "Expected a quoted string value for 't'"),
        (RM, "name = ('a')", "a parenthesised list is only allowed with IN and NOT IN"),
        (RM, "name = ,", "expected a value after 'name =', found ','"),
        (RM, "name IN 'a'", "expected a parenthesised list of quoted strings after 'name IN'"),
        (RM, "name IN ()", "expected a non-empty list of string values, but got empty list"),
        (RM, "name IN ( )", "expected a non-empty list of string values, but got empty list"),
        (RM, "name IN ('a',)", "expected a quoted string value, found ')'"),
        (RM, "name IN ('a' 'b')", "expected ',' or ')' in the list starting at position 8"),
        (RM, "name IN ('a', b)", "expected a quoted string value, found 'b)'"),
        (RM, "name IN (('a'))", "expected a quoted string value, found '('a'))'"),
        (RM, "name IN ('a'", "unterminated list starting at position 8"),
        (RM, "name IN ('a',", "unterminated list starting at position 8"),
        (MV, "version_number = 1.5", "Expected an integer value for 'version_number', got 1.5"),
        (MV, "version_number = 1e3", "Expected an integer value for 'version_number', got 1e3"),
        (MV, "version_number = 'x'", "Expected an integer value for 'version_number', got 'x'"),
        (MV, "version_number = ''", "Expected an integer value for 'version_number', got ''"),
        (MV, "version_number = 'v1'", "got 'v1'"),
        (MV, "version_number = ١", "Expected an integer value for 'version_number'"),
        (MV, "version_number = 99999999999999999999", "out of range"),
        (MV, "version_number = abc", "Expected an integer value for 'version_number', got abc"),
        # Text no database column can hold.
        (RM, "name = 'a\x00b'", "must not contain NUL characters"),
        (RM, "name = '\ud800'", "not valid Unicode text"),
    ],
)
def test_refused_filters(entity, filter_string, message):
    with pytest.raises(RegistryError) as caught:
        parse_filter(filter_string, entity=entity)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message


def test_limits_on_clauses_lists_and_patterns():
    many = " AND ".join(["name = 'a'"] * MAX_CLAUSES)
    assert len(parse_filter(many, entity=RM)) == MAX_CLAUSES
    with invalid(f"too many clauses (at most {MAX_CLAUSES} are allowed)"):
        parse_filter(many + " AND name = 'a'", entity=RM)

    values = ", ".join(f"'v{i}'" for i in range(MAX_IN_LIST_VALUES))
    assert len(parse_filter(f"name IN ({values})", entity=RM)[0].value) == MAX_IN_LIST_VALUES
    with invalid(f"too many values in a list (at most {MAX_IN_LIST_VALUES} are allowed)"):
        parse_filter(f"name IN ({values}, 'x')", entity=RM)

    pattern = "%" * MAX_LIKE_WILDCARDS + "x" * (MAX_LIKE_PATTERN_LENGTH - MAX_LIKE_WILDCARDS)
    assert parse_filter(f"name LIKE '{pattern}'", entity=RM)[0].value == pattern
    with invalid(
        f"The ILIKE pattern for 't' is too long: {MAX_LIKE_PATTERN_LENGTH + 1} characters "
        f"(at most {MAX_LIKE_PATTERN_LENGTH} are allowed)."
    ):
        parse_filter(f"tags.t ILIKE '{pattern}x'", entity=RM)
    with invalid(
        f"The LIKE pattern for 'name' has too many wildcards: {MAX_LIKE_WILDCARDS + 1} "
        f"(at most {MAX_LIKE_WILDCARDS} % and _ are allowed"
    ):
        parse_filter(f"name LIKE '_{pattern[:-1]}'", entity=RM)
    # An escaped wildcard is one literal character: it counts towards the length only.
    escaped = "\\_" * MAX_LIKE_PATTERN_LENGTH
    assert parse_filter(f"name LIKE '{escaped}'", entity=RM)[0].value == escaped
    with invalid("is too long"):
        parse_filter(f"name LIKE '{escaped}x'", entity=RM)
    # Long values are fine for equality.
    assert parse_filter(f"name = '{'x' * 50_000}'", entity=RM)[0].value == "x" * 50_000


@pytest.mark.parametrize(
    "filter_string",
    [
        "name = " + "1" * 100_000 + "x",
        "version_number = " + "1" * 100_000,
        "version_number = '" + "1" * 100_000 + "'",
        "name = 'a'" + " " * 100_000 + "x",
        "tags." + "a." * 50_000 + " = 'v' OR",
        "name IN (" + "'a', " * 20_000,
    ],
)
def test_long_garbage_is_refused(filter_string):
    # The parser is linear: a backtracking pattern would make this test run for minutes.
    with pytest.raises(RegistryError):
        parse_filter(filter_string, entity=MV)


@pytest.mark.parametrize(
    "filter_string",
    [
        "name = 'a' OR " + "x" * 10_000,
        "x" * 10_000 + " = 'a'",
        "x" * 10_000 + ".y = 'a'",
        "tags." + "k" * 10_000 + " IN ('a')",
        "tags." + "k" * 10_000 + " = 5",
        "tags." + "k" * 10_000,
        "tags." + "k" * 10_000 + " = ",
        "tags." + "k" * 10_000 + " LIKE '" + "%" * 20_000 + "'",
        "name = '" + "v" * 10_000,
        "name = " + "v" * 10_000,
        "name " + "v" * 10_000 + " 'a'",
    ],
)
def test_error_messages_truncate_long_input(filter_string):
    with pytest.raises(RegistryError) as caught:
        parse_filter(filter_string, entity=RM)
    assert len(caught.value.message) < 700


def test_non_string_filter_is_refused():
    with invalid("Invalid filter: it must be a string."):
        parse_filter(["name = 'a'"], entity=RM)  # type: ignore[arg-type]


_FUZZ_IDENTIFIERS = [
    "name", "attribute.name", "run_id", "source_path", "version_number", "tags.team",
    "tag.`mlflow.prompt.is_prompt`", 'tags."a b"', "tags.x.y", "current_stage", "foo.bar",
]  # fmt: skip
_FUZZ_COMPARATORS = ["=", "!=", ">", ">=", "<", "<=", "LIKE", "ilike", "IN", "NOT IN", "IS"]
_FUZZ_VALUES = [
    "'v'", '"v"', "'%'", "'a\\'", "'\\'", "'_'", "1", "-2", "1.5", "'1'", "('a', 'b')",
    "()", "x", "`v`", "'it''s'", "'true'", "'false'",
]  # fmt: skip
_FUZZ_NOISE = ["'", '"', "`", "(", ")", ",", " OR ", " AND ", "NOT ", ";", "\\", "%", "é", ""]


def _fuzz_filter(rng: random.Random) -> str:
    clauses = [
        f"{rng.choice(_FUZZ_IDENTIFIERS)} {rng.choice(_FUZZ_COMPARATORS)} "
        f"{rng.choice(_FUZZ_VALUES)}"
        for _ in range(rng.randint(1, 3))
    ]
    text = " AND ".join(clauses)
    for _ in range(rng.choice([0, 0, 1, 2])):  # sometimes break it
        position = rng.randint(0, len(text))
        text = text[:position] + rng.choice(_FUZZ_NOISE) + text[position + rng.randint(0, 2) :]
    return text


@pytest.mark.django_db
def test_fuzz_never_raises_anything_but_registry_errors():
    """Random filters, some broken on purpose: either clauses that run on the database, or an
    INVALID_PARAMETER_VALUE; never another exception."""
    rng = random.Random(1234)
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(1500):
        text = _fuzz_filter(rng)
        entity = rng.choice([RM, MV])
        try:
            clauses = parse_filter(text, entity=entity)
        except RegistryError as error:
            outcomes["refused"] += 1
            code = error.code
        else:
            outcomes["parsed"] += 1
            code = ErrorCode.INVALID_PARAMETER_VALUE
            model = RegisteredModel if entity == RM else ModelVersion
            list(model.objects.filter(filter_q(clauses, entity=entity)))
        assert code is ErrorCode.INVALID_PARAMETER_VALUE, text
    assert outcomes["parsed"] > 30
    assert outcomes["refused"] > 50


# ---------------------------------------------------------------------------------------------
# The LIKE pattern language


@pytest.mark.parametrize(
    ("value", "pattern", "case_sensitive", "expected"),
    [
        ("abc", "abc", True, True),
        ("abc", "ABC", True, False),
        ("abc", "ABC", False, True),
        ("abc", "a%", True, True),
        ("abc", "%", True, True),
        ("", "%", True, True),
        ("abc", "a_c", True, True),
        ("ac", "a_c", True, False),
        ("a_c", "a\\_c", True, True),
        ("abc", "a\\_c", True, False),
        ("a%", "a\\%", True, True),
        ("ab", "a\\%", True, False),
        ("a\\", "a\\", True, True),
        ("a\\", "a\\\\", True, True),
        ("a*", "a*", True, True),
        ("ab", "a*", True, False),
        ("a\nb", "a%b", True, True),
        ("false", "f%", True, True),
        ("FALSE", "f%", False, True),
    ],
)
def test_like_matches(value, pattern, case_sensitive, expected):
    assert like_matches(value, pattern, case_sensitive=case_sensitive) is expected


@pytest.mark.parametrize(
    ("pattern", "glob"),
    [
        ("abc", "abc"),
        ("a%", "a*"),
        ("a_c", "a?c"),
        ("a*b?c[d]", "a[*]b[?]c[[]d]"),
        ("a\\%b\\_c", "a%b_c"),
        ("a\\\\", "a\\"),
        ("a\\", "a\\"),
        ("a\\*", "a[*]"),
    ],
)
def test_like_to_glob(pattern, glob):
    assert like_to_glob(pattern) == glob


@pytest.mark.parametrize(
    ("pattern", "normalized"),
    [("a", "a"), ("a\\", "a\\\\"), ("a\\\\", "a\\\\"), ("a\\\\\\", "a\\\\\\\\"), ("", "")],
)
def test_normalize_like_pattern(pattern, normalized):
    assert normalize_like_pattern(pattern) == normalized


@pytest.mark.parametrize(
    "pattern",
    ["abc", "a%", "%b%", "a_c", "A%", "a\\_c", "a\\%", "%*%", "%?%", "%[%", "[ab]%", "a\\", "_"],
)
def test_glob_translation_agrees_with_like_on_sqlite(pattern):
    values = ["abc", "ABC", "a_c", "a%", "a*b", "a?b", "a[b", "[ab]x", "ac", "a\\", "x", ""]
    with sqlite3.connect(":memory:") as db:
        glob = like_to_glob(pattern)
        for value in values:
            (matched,) = db.execute("SELECT ? GLOB ?", (value, glob)).fetchone()
            assert bool(matched) is like_matches(value, pattern, case_sensitive=True), value


# ---------------------------------------------------------------------------------------------
# The Q builder against the database


def names(clauses_or_filter, entity=RM):
    clauses = (
        parse_filter(clauses_or_filter, entity=entity)
        if isinstance(clauses_or_filter, str)
        else clauses_or_filter
    )
    return set(
        RegisteredModel.objects.filter(filter_q(clauses, entity=RM)).values_list("name", flat=True)
    )


def versions(filter_string):
    clauses = parse_filter(filter_string, entity=MV)
    return set(
        ModelVersion.objects.filter(filter_q(clauses, entity=MV)).values_list(
            "registered_model__name", "version"
        )
    )


@pytest.fixture
def models(db):
    """Registered models with and without tags, and with and without the prompt marker."""
    tags = {
        "alpha": {"team": "a"},
        "Alpha-2": {"team": "b"},
        "beta": {},
        "under_score": {"x.y": "dotted", "a b": "Spaced"},
        "underXscore": {},
        "back\\slash": {},
        "prompt": {PROMPT: "true", "team": "a"},
        "not-a-prompt": {PROMPT: "false"},
    }
    for name, model_tags in tags.items():
        model = RegisteredModel.objects.create(name=name)
        for key, value in model_tags.items():
            RegisteredModelTag.objects.create(registered_model=model, key=key, value=value)
    return set(tags)


ALL_BUT_PROMPT = {
    "alpha", "Alpha-2", "beta", "under_score", "underXscore", "back\\slash", "not-a-prompt",
}  # fmt: skip


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name = 'alpha'", {"alpha"}),
        ("name = 'ALPHA'", set()),
        ("name LIKE 'alpha%'", {"alpha"}),
        ("name LIKE 'Alpha%'", {"Alpha-2"}),
        ("name ILIKE 'alpha%'", {"alpha", "Alpha-2"}),
        ("name ILIKE 'ALPHA'", {"alpha"}),
        ("name LIKE '%a-_'", {"Alpha-2"}),
        ("name LIKE 'under_score'", {"under_score", "underXscore"}),
        ("name LIKE 'under\\_score'", {"under_score"}),
        ("name LIKE 'back\\\\%'", {"back\\slash"}),
        ("name LIKE 'back\\'", set()),  # a trailing backslash is literal, not a database error
        ("name LIKE '%\\'", set()),
        ("name != 'alpha' AND name LIKE '%lpha%'", {"Alpha-2"}),
        ("name IN ('alpha', 'beta', 'missing')", {"alpha", "beta"}),
        (
            "name NOT IN ('alpha', 'beta', 'prompt', 'not-a-prompt')",
            {"Alpha-2", "under_score", "underXscore", "back\\slash"},
        ),
        ("tags.team = 'a'", {"alpha", "prompt"}),
        ("tags.team != 'b'", {"alpha", "prompt"}),  # only models that have the tag
        ("tags.team != 'zzz'", {"alpha", "Alpha-2", "prompt"}),
        ("tags.team LIKE '%'", {"alpha", "Alpha-2", "prompt"}),
        ("tags.team ILIKE 'B'", {"Alpha-2"}),
        ("tags.team LIKE 'B'", set()),
        ("tags.missing != 'x'", set()),
        ("tags.x.y = 'dotted'", {"under_score"}),
        ("tags.`a b` ILIKE 'spaced'", {"under_score"}),
        ("tags.`a b` LIKE 'spaced'", set()),
        ("tags.team = 'a' AND name LIKE 'a%'", {"alpha"}),
        ("tags.team = 'a' AND tags.team != 'a'", set()),
        # The prompt marker: an absent tag counts as 'false'.
        ("tag.`mlflow.prompt.is_prompt` != 'true'", ALL_BUT_PROMPT),
        ("tags.mlflow.prompt.is_prompt = 'true'", {"prompt"}),
        ("tags.`mlflow.prompt.is_prompt` = 'false'", ALL_BUT_PROMPT),
        ("tags.`mlflow.prompt.is_prompt` != 'false'", {"prompt"}),
        ("tags.`mlflow.prompt.is_prompt` LIKE 'f%'", ALL_BUT_PROMPT),
        ("tags.`mlflow.prompt.is_prompt` LIKE 't%'", {"prompt"}),
        ("tags.`mlflow.prompt.is_prompt` ILIKE 'FALSE'", ALL_BUT_PROMPT),
        ("tags.`mlflow.prompt.is_prompt` = 'yes'", set()),
        # What the MLflow client sends (protocol reference, wire transcript).
        (
            "name LIKE 'a%' AND tags.team != 'b' AND tag.`mlflow.prompt.is_prompt` != 'true'",
            {"alpha"},
        ),
        ("name IN ('alpha', 'prompt') AND tag.`mlflow.prompt.is_prompt` != 'true'", {"alpha"}),
    ],
)
def test_registered_model_filter_q(models, filter_string, expected):
    assert names(filter_string) == expected


def test_no_clauses_match_everything(models):
    assert names([]) == models
    assert filter_q([], entity=RM) == Q()


def test_tag_clauses_use_exists_subqueries(models):
    sql = str(RegisteredModel.objects.filter(filter_q(parse_filter(
        "tags.team != 'b' AND tags.`mlflow.prompt.is_prompt` != 'true'", entity=RM
    ), entity=RM)).query)  # fmt: skip
    assert sql.count("EXISTS") == 2
    assert "NOT EXISTS" in sql or "NOT (EXISTS" in sql


@pytest.fixture
def model_versions(db):
    m1 = RegisteredModel.objects.create(name="m1")
    m2 = RegisteredModel.objects.create(name="m2")
    rows = {
        ("m1", 1): ("run-a", "s3://b/p/1"),
        ("m1", 2): ("RUN-b", "s3://b/p/2"),
        ("m1", 3): ("", "s3://other/3"),
        ("m2", 1): ("run-a", "s3://b/q/1"),
        ("m2", 2): ("run-c", "/local/path"),
    }
    created = {}
    for (model_name, number), (run_id, source) in rows.items():
        created[model_name, number] = ModelVersion.objects.create(
            registered_model=m1 if model_name == "m1" else m2,
            version=number,
            run_id=run_id,
            source=source,
        )
    ModelVersionTag.objects.create(model_version=created["m1", 2], key="t", value="v")
    ModelVersionTag.objects.create(model_version=created["m2", 1], key="t", value="w")
    return created


ALL_VERSIONS = {("m1", 1), ("m1", 2), ("m1", 3), ("m2", 1), ("m2", 2)}


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("", ALL_VERSIONS),
        ("name = 'm1'", {("m1", 1), ("m1", 2), ("m1", 3)}),
        ("name != 'm1'", {("m2", 1), ("m2", 2)}),
        ("name IN ('m2', 'nope')", {("m2", 1), ("m2", 2)}),
        ("name NOT IN ('m2')", {("m1", 1), ("m1", 2), ("m1", 3)}),
        ("name LIKE 'M%'", set()),
        ("name ILIKE 'M2'", {("m2", 1), ("m2", 2)}),
        ("version_number = 2", {("m1", 2), ("m2", 2)}),
        ("version_number = '2'", {("m1", 2), ("m2", 2)}),
        ("version_number != 2", {("m1", 1), ("m1", 3), ("m2", 1)}),
        ("version_number > 2", {("m1", 3)}),
        ("version_number >= 2", {("m1", 2), ("m1", 3), ("m2", 2)}),
        ("version_number < 2", {("m1", 1), ("m2", 1)}),
        ("version_number <= 1", {("m1", 1), ("m2", 1)}),
        ("name = 'm1' AND version_number >= 2", {("m1", 2), ("m1", 3)}),
        # Numbers outside the column's range are answered, not sent to the database to fail.
        ("version_number = 999999999999", set()),
        ("version_number < 999999999999", ALL_VERSIONS),
        ("version_number != 999999999999", ALL_VERSIONS),
        ("version_number > -5", ALL_VERSIONS),
        ("version_number = -5", set()),
        ("version_number <= -5", set()),
        ("run_id = 'run-a'", {("m1", 1), ("m2", 1)}),
        ("run_id = ''", {("m1", 3)}),
        ("run_id IN ('run-a', 'run-c')", {("m1", 1), ("m2", 1), ("m2", 2)}),
        ("run_id NOT IN ('run-a')", {("m1", 2), ("m1", 3), ("m2", 2)}),
        ("run_id LIKE 'run%'", {("m1", 1), ("m2", 1), ("m2", 2)}),
        ("run_id ILIKE 'run%'", {("m1", 1), ("m1", 2), ("m2", 1), ("m2", 2)}),
        ("source_path = 's3://b/p/1'", {("m1", 1)}),
        ("source_path LIKE 's3://b/%'", {("m1", 1), ("m1", 2), ("m2", 1)}),
        ("source_path LIKE 's3://b/_/1'", {("m1", 1), ("m2", 1)}),
        ("source_path != '/local/path'", {("m1", 1), ("m1", 2), ("m1", 3), ("m2", 1)}),
        ("tags.t = 'v'", {("m1", 2)}),
        ("tags.t != 'v'", {("m2", 1)}),
        ("tags.t LIKE '%'", {("m1", 2), ("m2", 1)}),
        ("tags.nope != 'v'", set()),
        ("tags.`mlflow.prompt.is_prompt` != 'true'", ALL_VERSIONS),
    ],
)
def test_model_version_filter_q(model_versions, filter_string, expected):
    assert versions(filter_string) == expected


# Tag values on both sides of the length the (key, value) search indexes hold.
LONG_VALUES = {
    "short": "v",
    "at-limit": "x" * INDEXED_TAG_VALUE_MAX_LENGTH,
    "at-limit-multibyte": "é" * INDEXED_TAG_VALUE_MAX_LENGTH,
    "over-limit": "x" * (INDEXED_TAG_VALUE_MAX_LENGTH + 1),
    "longest": "y" * TAG_VALUE_MAX_LENGTH,
}


@pytest.fixture
def tagged_at_every_length(db):
    for name, value in LONG_VALUES.items():
        model = RegisteredModel.objects.create(name=name)
        RegisteredModelTag.objects.create(registered_model=model, key="k", value=value)
        version = ModelVersion.objects.create(registered_model=model, version=1, source="s")
        ModelVersionTag.objects.create(model_version=version, key="k", value=value)


@pytest.mark.parametrize("name", list(LONG_VALUES))
def test_tag_equality_finds_values_of_any_length(tagged_at_every_length, name):
    value = LONG_VALUES[name]
    others = set(LONG_VALUES) - {name}
    assert names(f"tags.k = '{value}'") == {name}
    assert names(f"tags.k != '{value}'") == others
    assert versions(f"tags.k = '{value}'") == {(name, 1)}
    assert versions(f"tags.k != '{value}'") == {(other, 1) for other in others}
    # One character more or less is another value, whichever side of the limit it falls.
    for other_value in (value + "x", value[:-1]):
        expected = {other for other, v in LONG_VALUES.items() if v == other_value}
        assert names(f"tags.k = '{other_value}'") == expected


def test_short_tag_equalities_state_the_index_condition(tagged_at_every_length):
    """An equality on a value the partial index can hold carries the index's condition, so the
    database may use it; a longer value's does not (no index holds it)."""

    def sql(value):
        clauses = parse_filter(f"tags.k = '{value}'", entity=MV)
        return str(ModelVersion.objects.filter(filter_q(clauses, entity=MV)).query)

    assert f'LENGTH(U0."value") <= {INDEXED_TAG_VALUE_MAX_LENGTH}' in sql("x" * 256)
    assert "LENGTH(" not in sql("x" * 257)


def test_filter_q_refuses_clauses_the_parser_would_not_produce():
    with invalid("Invalid attribute key 'current_stage' specified."):
        filter_q([attr("current_stage", "=", "None")], entity=MV)
    with invalid("Invalid comparator 'IN' for attribute 'source_path'"):
        filter_q([attr("source_path", "IN", ("a",))], entity=MV)
    with invalid("Invalid value type for attribute 'version_number'"):
        filter_q([attr("version_number", "=", "1")], entity=MV)
    with invalid("Invalid comparator '>' for a tag"):
        filter_q([tag("t", ">", "1")], entity=RM)
    with pytest.raises(ValueError, match="Unknown search entity"):
        filter_q([], entity="experiment")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The lookups on SQLite (the production default when DATABASE_URL is not set)


@pytest.fixture
def sqlite_connection(django_db_blocker):
    """A private in-memory SQLite connection with the registered-model tables."""
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )
    connection = handler["default"]
    with django_db_blocker.unblock():
        with connection.schema_editor() as editor:
            editor.create_model(RegisteredModel)
            editor.create_model(RegisteredModelTag)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")  # no accounts_user table here
            for pk, name in enumerate(["Alpha", "alpha", "a_c", "abc", "a*c", "a[c", "a\\"], 1):
                cursor.execute(
                    "INSERT INTO registry_registeredmodel (id, code, name, description, "
                    "created_at, updated_at, last_version_number) "
                    "VALUES (%s, %s, %s, '', '2024-01-01', '2024-01-01', 0)",
                    [pk, f"{pk:032x}", name],
                )
            cursor.execute(
                "INSERT INTO registry_registeredmodeltag (registered_model_id, key, value) "
                "VALUES (4, 'team', 'Red')"
            )
        yield connection
        connection.close()


def sqlite_names(connection, filter_string):
    query = RegisteredModel.objects.filter(
        filter_q(parse_filter(filter_string, entity=RM), entity=RM)
    ).values_list("name", flat=True)
    sql, params = query.query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("name LIKE 'alpha'", {"alpha"}),
        ("name LIKE 'A%'", {"Alpha"}),
        ("name ILIKE 'ALPHA'", {"Alpha", "alpha"}),
        ("name LIKE 'a_c'", {"a_c", "abc", "a*c", "a[c"}),
        ("name LIKE 'a\\_c'", {"a_c"}),
        ("name ILIKE 'A\\_C'", {"a_c"}),
        ("name LIKE 'a*c'", {"a*c"}),
        ("name LIKE 'a[c'", {"a[c"}),
        ("name LIKE 'a\\'", {"a\\"}),
        ("name ILIKE 'a\\'", {"a\\"}),
        ("tags.team LIKE 'red'", set()),
        ("tags.team ILIKE 'red'", {"abc"}),
        ("tags.team = 'Red'", {"abc"}),
        ("tags.team = 'red'", set()),
        ("tags.team != 'Red'", set()),
        ("tags.team != 'Blue'", {"abc"}),
    ],
)
def test_lookups_on_sqlite(sqlite_connection, filter_string, expected):
    assert sqlite_names(sqlite_connection, filter_string) == expected


def test_largest_accepted_inputs_run_on_sqlite(sqlite_connection):
    pattern = "[*" * (MAX_LIKE_PATTERN_LENGTH // 2)  # the longest GLOB translation
    many = ", ".join(f"'v{i}'" for i in range(MAX_IN_LIST_VALUES))
    clauses = " AND ".join([f"name NOT IN ({many})"] * 4 + ["tags.t != 'x'"] * 15)
    assert sqlite_names(sqlite_connection, f"name LIKE '{pattern}' AND {clauses}") == set()
    assert sqlite_names(sqlite_connection, f"name ILIKE '{pattern[:-1]}ü'") == set()


@pytest.mark.django_db
def test_largest_accepted_inputs_run_on_the_database():
    pattern = ("é%\\" * MAX_LIKE_WILDCARDS).ljust(MAX_LIKE_PATTERN_LENGTH, "é")
    many = ", ".join(f"'v{i}'" for i in range(MAX_IN_LIST_VALUES))
    clauses = " AND ".join(
        [f"name NOT IN ({many})", f"name LIKE '{pattern}'", f"name = '{'x' * 50_000}'"]
        + [f"tags.t{i} != 'x'" for i in range(MAX_CLAUSES - 3)]
    )
    assert names(clauses) == set()
    assert versions(f"run_id IN ({many}) AND source_path ILIKE '{pattern}'") == set()


# ---------------------------------------------------------------------------------------------
# order_by


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (None, ["name", "pk"]),
        ([], ["name", "pk"]),
        ([""], ["name", "pk"]),
        (["name"], ["name", "pk"]),
        (["name DESC"], ["-name", "pk"]),
        (["name desc"], ["-name", "pk"]),
        (["attribute.name ASC"], ["name", "pk"]),
        (["`name` asc"], ["name", "pk"]),
        (["timestamp"], ["updated_at", "name", "pk"]),
        (["last_updated_timestamp DESC"], ["-updated_at", "name", "pk"]),
        (["last_updated_timestamp DESC", "name ASC"], ["-updated_at", "name", "pk"]),
        (["name DESC", "timestamp"], ["-name", "updated_at", "pk"]),
        (["  timestamp   asc  "], ["updated_at", "name", "pk"]),
    ],
)
def test_order_by_registered_models(order_by, expected):
    assert parse_order_by(order_by, entity=RM) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (None, ["-updated_at", "registered_model__name", "-version", "pk"]),
        (["name"], ["registered_model__name", "-version", "pk"]),
        (["version_number ASC"], ["version", "registered_model__name", "pk"]),
        (["version_number DESC", "name DESC"], ["-version", "-registered_model__name", "pk"]),
        (["creation_timestamp"], ["created_at", "registered_model__name", "-version", "pk"]),
        (
            ["last_updated_timestamp ASC", "creation_timestamp DESC"],
            ["updated_at", "-created_at", "registered_model__name", "-version", "pk"],
        ),
    ],
)
def test_order_by_model_versions(order_by, expected):
    assert parse_order_by(order_by, entity=MV) == expected


@pytest.mark.parametrize(
    ("entity", "order_by", "message"),
    [
        (
            RM,
            ["creation_timestamp"],
            "Invalid order by key 'creation_timestamp' specified. Valid keys are "
            "'{'name', 'timestamp', 'last_updated_timestamp'}'",
        ),
        (RM, ["version_number"], "Invalid order by key 'version_number' specified."),
        (RM, ["tags.team"], "Invalid order by key 'tags.team' specified."),
        (MV, ["timestamp"], "Invalid order by key 'timestamp' specified."),
        (MV, ["current_stage"], "Invalid order by key 'current_stage' specified."),
        (RM, ["name ASC DESC"], "Invalid order_by clause 'name ASC DESC'. Could not be parsed."),
        (RM, ["name UP"], "Invalid ordering key in order_by clause 'name UP'"),
        (RM, ["name", "name DESC"], "`order_by` contains duplicate fields: ['name', 'name DESC']"),
        (RM, ["timestamp", "last_updated_timestamp"], "`order_by` contains duplicate fields"),
        (MV, ["version_number", "version_number"], "`order_by` contains duplicate fields"),
        (RM, [1], "Invalid order_by clause 1: it must be a string."),
        (RM, "name", "Invalid order_by: it must be a list of strings."),
    ],
)
def test_order_by_refusals(entity, order_by, message):
    with invalid(message):
        parse_order_by(order_by, entity=entity)


@pytest.mark.django_db
def test_order_by_on_registered_models():
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for name, minutes in [("b", 3), ("a", 1), ("c", 1), ("d", 2)]:
        RegisteredModel.objects.create(name=name, updated_at=start + dt.timedelta(minutes=minutes))

    def ordered(order_by):
        ordering = parse_order_by(order_by, entity=RM)
        return list(RegisteredModel.objects.order_by(*ordering).values_list("name", flat=True))

    assert ordered(None) == ["a", "b", "c", "d"]
    assert ordered(["name DESC"]) == ["d", "c", "b", "a"]
    assert ordered(["timestamp"]) == ["a", "c", "d", "b"]
    assert ordered(["last_updated_timestamp DESC"]) == ["b", "d", "a", "c"]


@pytest.mark.django_db
def test_order_by_and_paging_on_model_versions():
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    same_time = start + dt.timedelta(hours=1)
    m1 = RegisteredModel.objects.create(name="m1")
    m2 = RegisteredModel.objects.create(name="m2")
    for model, number, updated, created in [
        (m1, 1, start, start),
        (m1, 2, same_time, start + dt.timedelta(minutes=2)),
        (m2, 1, same_time, start + dt.timedelta(minutes=1)),
        (m2, 2, same_time, start + dt.timedelta(minutes=3)),
        (m1, 3, start + dt.timedelta(hours=2), start + dt.timedelta(minutes=4)),
    ]:
        ModelVersion.objects.create(
            registered_model=model,
            version=number,
            source="s3://b/p",
            updated_at=updated,
            created_at=created,
        )

    def ordered(order_by):
        ordering = parse_order_by(order_by, entity=MV)
        queryset = ModelVersion.objects.order_by(*ordering)
        return list(queryset.values_list("registered_model__name", "version"))

    # Default: last update DESC, then name ASC, then version DESC.
    assert ordered(None) == [("m1", 3), ("m1", 2), ("m2", 2), ("m2", 1), ("m1", 1)]
    assert ordered(["creation_timestamp DESC"]) == [
        ("m1", 3), ("m2", 2), ("m1", 2), ("m2", 1), ("m1", 1),
    ]  # fmt: skip
    assert ordered(["version_number"]) == [("m1", 1), ("m2", 1), ("m1", 2), ("m2", 2), ("m1", 3)]
    assert ordered(["name DESC"]) == [("m2", 2), ("m2", 1), ("m1", 3), ("m1", 2), ("m1", 1)]

    # Paging with tokens walks the same order without gaps or repeats.
    ordering = parse_order_by(None, entity=MV)
    seen, token = [], ""
    while True:
        offset = decode_page_token(token)
        queryset = ModelVersion.objects.order_by(*ordering)
        page = list(queryset.values_list("registered_model__name", "version")[offset : offset + 3])
        seen.extend(page[:2])
        if len(page) <= 2:
            break
        token = encode_page_token(offset + 2)
    assert seen == ordered(None)


# ---------------------------------------------------------------------------------------------
# Page tokens and max_results


def test_page_token_round_trip():
    assert encode_page_token(1) == "eyJvZmZzZXQiOiAxfQ=="  # the reference server's token
    for offset in (0, 1, 10, 12345, 2**40):
        assert decode_page_token(encode_page_token(offset)) == offset


@pytest.mark.parametrize(
    ("token", "offset"),
    [
        (None, 0),
        ("", 0),
        ("   ", 0),
        ("eyJvZmZzZXQiOiAxfQ==", 1),
        ("eyJvZmZzZXQiOiAxfQ", 1),  # padding dropped
        (base64.urlsafe_b64encode(b'{"offset": 7}').decode(), 7),
        (base64.b64encode(b'{"offset": 0}').decode(), 0),
    ],
)
def test_decode_page_token(token, offset):
    assert decode_page_token(token) == offset


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not base64!", "Invalid page token, could not base64-decode"),
        ("a", "Invalid page token, could not base64-decode"),
        ("é", "Invalid page token, could not base64-decode"),
        ("x" * 5000, "Invalid page token, could not base64-decode"),
        (_b64(b"not json"), "Invalid page token, decoded value="),
        (_b64(b"\xff\xfe"), "Invalid page token, decoded value="),
        (_b64(b"[" * 600), "Invalid page token, decoded value="),
        (_b64(b'{"offset": -1}'), "Invalid page token, parsed value="),
        (_b64(b'{"offset": 1.5}'), "Invalid page token, parsed value="),
        (_b64(b'{"offset": "3"}'), "Invalid page token, parsed value="),
        (_b64(b'{"offset": true}'), "Invalid page token, parsed value="),
        (_b64(b'{"offset": 100000000000000000000}'), "Invalid page token, parsed value="),
        (_b64(b'{"other": 1}'), "Invalid page token, parsed value="),
        (_b64(b"[1]"), "Invalid page token, parsed value="),
        (_b64(b"5"), "Invalid page token, parsed value="),
        (7, "Invalid page token, could not base64-decode"),
    ],
)
def test_decode_page_token_refusals(token, message):
    with invalid(message):
        decode_page_token(token)


@pytest.mark.parametrize("offset", [-1, 1.5, "1", True])
def test_encode_page_token_needs_an_offset(offset):
    with pytest.raises(ValueError, match="non-negative integer"):
        encode_page_token(offset)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 100),
        ("", 100),
        (1, 1),
        (1000, 1000),
        ("5", 5),
        (" 42 ", 42),
        ("+7", 7),
        (10.0, 10),
    ],
)
def test_check_max_results(value, expected):
    assert check_max_results(value, default=100, maximum=1000) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "It must be a positive integer no greater than 1000, but got 0"),
        (-3, "It must be a positive integer no greater than 1000, but got -3"),
        ("0", "but got '0'"),
        ("abc", "It must be a positive integer no greater than 1000, but got 'abc'"),
        ("1.5", "but got '1.5'"),
        (1.5, "but got 1.5"),
        (float("nan"), "but got nan"),
        (float("inf"), "but got inf"),
        (True, "but got True"),
        ("١٢", "but got '١٢'"),
        ("9" * 5000, "no greater than 1000"),
        ([5], "but got [5]"),
        (
            1001,
            "Invalid value for request parameter max_results. It must be at most 1000, "
            "but got value 1001",
        ),
        ("5000", "It must be at most 1000, but got value '5000'"),
    ],
)
def test_check_max_results_refusals(value, message):
    with invalid(message):
        check_max_results(value, default=100, maximum=1000)
