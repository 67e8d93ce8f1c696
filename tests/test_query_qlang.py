"""The q-language parser and printer (clause 4.9)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Number,
    Or,
    Pattern,
    QExpr,
    Range,
    Text,
    Time,
    Uri,
    ValueList,
    format_q,
    parse_q,
)
from ngsi_ld.query.ast import MEMBERS
from ngsi_ld.query.qlang import MAX_DEPTH, MAX_LENGTH
from ngsi_ld.query.regexes import compile_pattern


def term(name: str, op: str, value: object) -> Comparison:
    return Comparison(AttrPath((name,)), op, value)  # type: ignore[arg-type]


@pytest.mark.parametrize("op", ["==", "!=", ">", ">=", "<", "<="])
def test_each_comparison_operator(op: str) -> None:
    assert parse_q(f"speed{op}50") == term("speed", op, Number(50))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a==12", Number(12)),
        ("a==-3", Number(-3)),
        ("a==1.5", Number(1.5)),
        ("a==2e3", Number(2000.0)),
        ('a=="hello world"', Text("hello world")),
        (r'a=="say \"hi\" \\ bye"', Text('say "hi" \\ bye')),
        ("a==true", Boolean(True)),
        ("a==false", Boolean(False)),
        ("a==urn:ngsi-ld:Building:1", Uri("urn:ngsi-ld:Building:1")),
        ("a==https://example.org/x?y=1", Uri("https://example.org/x?y=1")),
        ("a==2018-12-04T12:00:00Z", DateTime("2018-12-04T12:00:00Z")),
        ("a==2018-12-04T12:00:00.123+02:00", DateTime("2018-12-04T12:00:00.123+02:00")),
        ("a==2018-12-04", Date("2018-12-04")),
        ("a==12:00:00Z", Time("12:00:00Z")),
        ("a==1..5", Range(Number(1), Number(5))),
        ('a=="a".."m"', Range(Text("a"), Text("m"))),
        (
            "a==2018-01-01T00:00:00Z..2019-01-01T00:00:00Z",
            Range(DateTime("2018-01-01T00:00:00Z"), DateTime("2019-01-01T00:00:00Z")),
        ),
        ('a==1,"two",true', ValueList((Number(1), Text("two"), Boolean(True)))),
        ("a==urn:x:1,urn:x:2", ValueList((Uri("urn:x:1"), Uri("urn:x:2")))),
    ],
)
def test_values(text: str, value: object) -> None:
    assert parse_q(text) == term("a", "==", value)


def test_regex_operators_quoted_and_unquoted() -> None:
    assert parse_q('name~="(?i)^mer.*"') == term("name", "~=", Pattern("(?i)^mer.*"))
    assert parse_q("name!~=ab(c|d)e") == term("name", "!~=", Pattern("ab(c|d)e"))
    # an unquoted pattern stops at ';' or '|' outside parentheses
    assert parse_q("name~=a.c;x") == And((term("name", "~=", Pattern("a.c")), _exists("x")))


def _exists(*names: str, negated: bool = False) -> Exists:
    return Exists(AttrPath(names), negated)


def test_logical_operators_and_precedence() -> None:
    a, b, c = _exists("a"), _exists("b"), _exists("c")
    assert parse_q("a;b") == And((a, b))
    assert parse_q("a|b") == Or((a, b))
    assert parse_q("a;b|c") == Or((And((a, b)), c))
    assert parse_q("a|b;c") == Or((a, And((b, c))))
    assert parse_q("a;(b|c)") == And((a, Or((b, c))))
    assert parse_q("((a))") == a
    assert parse_q(" a ; b ") == And((a, b))


def test_existence_and_absence() -> None:
    assert parse_q("temperature") == _exists("temperature")
    assert parse_q("!temperature") == _exists("temperature", negated=True)
    assert parse_q("!a.b;c") == And((_exists("a", "b", negated=True), _exists("c")))


def test_attribute_paths() -> None:
    assert parse_q("a.b.c==1").path == AttrPath(("a", "b", "c"))  # type: ignore[union-attr]
    for member in sorted(MEMBERS):
        assert parse_q(f"a.b.{member}").path == AttrPath(("a", "b"), member)  # type: ignore[union-attr]
    assert parse_q("address[city]").path == AttrPath(("address",), None, ("city",))  # type: ignore[union-attr]
    dotted = parse_q('a.s[x.y]=="v"')
    assert dotted.path == AttrPath(("a", "s"), None, ("x", "y"))  # type: ignore[union-attr]
    assert parse_q('a.s[x][y]=="v"') == dotted
    # a lone member name is an attribute called so
    assert parse_q("unitCode").path == AttrPath(("unitCode",))  # type: ignore[union-attr]


def test_unicode_names() -> None:
    assert parse_q("température>3") == term("température", ">", Number(3))


def test_iri_names_keep_their_dots() -> None:
    expr = parse_q("https://ex.org/a.b.https://ex.org/c.observedAt>2020-01-01T00:00:00Z")
    assert expr.path == AttrPath(("https://ex.org/a.b", "https://ex.org/c"), "observedAt")  # type: ignore[union-attr]
    assert parse_q("ex:a.ex:b").path == AttrPath(("ex:a", "ex:b"))  # type: ignore[union-attr]
    assert parse_q("t.https://ex.org/s").path == AttrPath(("t", "https://ex.org/s"))  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "empty query"),
        ("a==", 3, "expected a value"),
        ("a===1", 3, "expected a value"),
        ("a=1", 1, "expected an operator"),
        ("a b", 2, "expected an operator"),
        ("(a", 2, "expected ')'"),
        ("a)", 1, "unbalanced ')'"),
        ("a;", 2, "expected an attribute name"),
        ("a;;b", 2, "expected an attribute name"),
        ("a..b==1", 0, "empty attribute name"),
        ('a=="open', 3, "unterminated string"),
        ("a>true", 2, "expected a number, a string or a date/time"),
        ("a>1,2", 3, "a value list is only allowed with == and !="),
        ("a==12abc", 5, "unexpected 'a'"),
        ("a==2018-13-01", 3, "invalid date"),
        ("a~=(", 3, "invalid regular expression"),
        ("a==1..true", 6, "a range needs numbers, strings or dates"),
        ("a.observedAt[x]", 12, "observedAt has no compound keys"),
        ("a[x", 3, "expected ']'"),
        ("a[]", 2, "expected a key"),
        ("a==@word", 3, "expected a value"),
        ("a==" + "9" * 5000, 3, "number longer than 64 characters"),
        ("a>1e999", 2, "out of range"),
        ("a b c==1", 2, "expected an operator"),
        ("a;(b|c", 6, "expected ')'"),
        ("a==1 2", 5, "unexpected '2' after the value"),
        ("a.:x", 0, "invalid attribute name ':x'"),
    ],
)
def test_errors_name_the_position(text: str, position: int, message: str) -> None:
    with pytest.raises(BadRequestData) as info:
        parse_q(text)
    assert f"invalid q at position {position}: " in info.value.detail
    assert message in info.value.detail


def test_input_is_bounded() -> None:
    with pytest.raises(BadRequestData, match="longer than"):
        parse_q("a" * (MAX_LENGTH + 1))
    assert parse_q("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH) == _exists("a")
    with pytest.raises(BadRequestData, match="nested deeper"):
        parse_q("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(BadRequestData, match="nested deeper"):
        parse_q("(" * 5000)


# -- properties ---------------------------------------------------------------------------

_NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_terms = st.text(_NAME_ALPHABET, min_size=1, max_size=8).filter(lambda n: n not in MEMBERS)
_iris = _terms.map(lambda n: "https://example.org/" + n)
_paths = st.builds(
    lambda names, member, keys: AttrPath(tuple(names), member, () if member else tuple(keys)),
    st.one_of(st.lists(_terms, min_size=1, max_size=3), st.lists(_iris, min_size=1, max_size=2)),
    st.one_of(st.none(), st.sampled_from(sorted(MEMBERS))),
    st.lists(st.text(_NAME_ALPHABET + ":@-", min_size=1, max_size=6), max_size=2),
)
_comparables = st.one_of(
    st.integers(-(10**12), 10**12).map(Number),
    st.floats(allow_nan=False, allow_infinity=False).map(Number),
    st.text(max_size=10).map(Text),
    st.datetimes(timezones=st.one_of(st.none(), st.just(dt.UTC))).map(
        lambda d: DateTime(d.isoformat())
    ),
    st.dates().map(lambda d: Date(d.isoformat())),
    st.times().map(lambda t: Time(t.isoformat())),
)
_scalars = st.one_of(
    _comparables,
    st.booleans().map(Boolean),
    _terms.map(lambda n: Uri("urn:ngsi-ld:Thing:" + n)),
)


def _valid_regex(text: str) -> bool:
    try:
        compile_pattern(text)
    except BadRequestData:
        return False
    return True


_patterns = st.text(min_size=1, max_size=8).filter(_valid_regex).map(Pattern)
_comparisons = st.one_of(
    st.builds(
        Comparison,
        _paths,
        st.sampled_from(["==", "!="]),
        st.one_of(
            _scalars,
            st.builds(Range, _comparables, _comparables),
            st.lists(_scalars, min_size=2, max_size=4).map(lambda v: ValueList(tuple(v))),
        ),
    ),
    st.builds(Comparison, _paths, st.sampled_from([">", ">=", "<", "<="]), _comparables),
    st.builds(Comparison, _paths, st.sampled_from(["~=", "!~="]), _patterns),
)
_leaves = st.one_of(_comparisons, st.builds(Exists, _paths, st.booleans()))
_exprs: st.SearchStrategy[QExpr] = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda t: And(tuple(t))),
        st.lists(children, min_size=2, max_size=3).map(lambda t: Or(tuple(t))),
    ),
    max_leaves=8,
)


@settings(max_examples=200)
@given(_exprs)
def test_format_then_parse_gives_the_same_ast(expr: QExpr) -> None:
    assert parse_q(format_q(expr)) == expr


@settings(max_examples=500)
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet='ab.:[]()!=<>~;|,"\\ -0123456789eTZ', max_size=40),
    )
)
def test_garbage_only_raises_bad_request_data(text: str) -> None:
    try:
        expr = parse_q(text)
    except BadRequestData as exc:
        assert exc.detail.startswith("invalid q")
    else:
        assert parse_q(format_q(expr)) == expr


def test_an_unquoted_term_is_a_value() -> None:
    # 4.9 EXAMPLE 12: gender==Male (compared as a string unless expandValues expands it)
    assert parse_q("gender==Male") == Comparison(AttrPath(("gender",)), "==", Uri("Male"))
    assert parse_q("a==x-1,y_2;b") == And((
        Comparison(AttrPath(("a",)), "==", ValueList((Uri("x-1"), Uri("y_2")))),
        Exists(AttrPath(("b",))),
    ))
    assert parse_q(format_q(parse_q("a!=Été"))) == parse_q("a!=Été")
