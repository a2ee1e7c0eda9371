"""SQL guards: what SQL written by pipeline authors may do.

Polars SQL (``sql_transform`` and the expression fields) may only read the step's own table: the text is
tokenized here and every function call must be on an allow-list, so file readers (``read_csv``, ``scan_*``
and any Polars adds later) never run. SQLite connections get an authorizer refusing ATTACH, DETACH,
VACUUM INTO and pragmas that are not read-only introspection. ``sql_execute`` scripts are split into
statements run one by one inside the plugin's own transaction, and transaction control is refused.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from orchestrator.plugins.base import PluginError

# ---------------------------------------------------------------------------------------------------------
# Polars SQL
# ---------------------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Scalar, aggregate and window functions of Polars SQL (2.1), probed one by one: none reads or writes files.
POLARS_FUNCTIONS = _words(
    """
    abs acos acosd approx_quantile array_agg array_contains array_dot_product array_get array_inner_product
    array_length array_lower array_mean array_reverse array_sum array_to_string array_unique array_upper asin
    asind atan atan2 atan2d atand avg bit_and bit_count bit_length bit_not bit_or bit_xor bitand bitnot bitor
    bitxor cast cbrt ceil ceiling char_length character_length coalesce columns concat concat_ws corr cos cosd
    cot cotd count covar covar_pop covar_samp cume_dist current_date current_time current_timestamp date
    date_part date_trunc datetime day dayofmonth dayofweek dayofyear degrees dense_rank div ends_with erf erfc
    exp extract first first_value floor generate_series greatest grouping hour if ifnull initcap lag last
    last_value lead least left length listagg ln localtime localtimestamp log log10 log1p log2 lower lpad
    ltrim max median min minute mod month normalize now nth_value ntile nullif octet_length percent_rank pi
    position pow power quantile_cont quantile_disc quarter radians range rank regexp_like regexp_replace
    replace reverse right round row_number rpad rtrim second sign sin sind split_part sqrt starts_with stddev
    stddev_samp stdev stdev_samp strftime string_agg string_to_array strpos strptime substr substring sum tan
    tand time timestamp total trim trunc truncate try_cast unnest upper var var_samp variance week xor year
    """
)
#: Table functions a FROM may call: they compute rows and read nothing.
POLARS_TABLE_FUNCTIONS = frozenset({"unnest", "generate_series"})
#: Keywords Polars SQL follows with "(" that are syntax, not calls (IN (...), OVER (...), AS (...) ...).
_SYNTAX_PARENS = _words(
    """
    ALL AND ANY ARRAY AS BETWEEN BY CASE CUBE DISTINCT ELSE EXCEPT EXCLUDE EXISTS FILTER FROM GROUP HAVING
    ILIKE IN INTERSECT IS JOIN LIKE LIMIT MATCH_CONDITION NOT OFFSET ON OR OVER PIVOT QUALIFY RECURSIVE REGEXP
    RENAME RLIKE ROLLUP SELECT SETS SOME THEN UNION UNPIVOT USING VALUES WHEN WHERE WITH
    """
)
#: Functions whose arguments use FROM as a word (EXTRACT(year FROM d), SUBSTRING(s FROM 2), TRIM(x FROM s)).
_FROM_IN_ARGUMENTS = frozenset({"extract", "substring", "trim", "position"})
_QUERY_START = frozenset({"SELECT", "WITH", "VALUES", "FROM"})
_CLAUSE_AFTER_FROM = _words(
    "WHERE GROUP HAVING QUALIFY WINDOW ORDER LIMIT OFFSET FETCH UNION INTERSECT EXCEPT MINUS SELECT"
)
_NOT_AN_ALIAS = _CLAUSE_AFTER_FROM | _words(
    """
    JOIN INNER LEFT RIGHT FULL OUTER CROSS NATURAL SEMI ANTI ASOF POSITIONAL LATERAL ON USING AS WITH FOR
    MATCH_CONDITION TABLESAMPLE
    """
)
_IO_NAME = re.compile(r"^(read|scan|write|sink|load|copy|import|export)(_|$)|_files?$|^(glob|file|files)$")
#: Rust's char::is_whitespace, which the Polars SQL tokenizer uses; anything else unknown is refused.
_WHITESPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | {
    chr(c) for c in range(0x2000, 0x200B)
}
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?")
#: longest first, so "->>" is one token, not "->" and ">"
_OPERATORS = sorted(
    _words("->> -> :: <=> <> != >= <= || // => << >> ( ) [ ] { } , . ; + - * / % = < > ! | & ^ ~ : ?"),
    key=len,
    reverse=True,
)
_NO_FILES = "SQL here may not read files"
#: what to write instead of common functions of other SQL dialects
_INSTEAD = {
    "mean": "avg(x)",
    "std": "stddev(x)",
    "n_unique": "count(DISTINCT x)",
    "nvl": "coalesce(x, y)",
    "iif": "if(condition, a, b)",
    "len": "length(x)",
}
_FILE_STEPS = (
    "read files with csv_extract, parquet_extract or json_extract steps (join_merge combines tables)"
)


class _Refused(Exception):
    """Internal: why a text is refused (becomes the problem string)."""


class _Malformed(_Refused):
    """Internal: the text is not SQL this guard can read (unclosed quotes or brackets, odd characters)."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, quoted (identifier), string, number, op
    text: str  # as written for words, numbers and ops; the content for quoted identifiers and strings
    pos: int

    @property
    def keyword(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.text in ops

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "quoted")


def _quoted_end(text: str, start: int, quote: str) -> int:
    """Index of the quote closing the literal opened at ``start`` (a doubled quote stays inside)."""
    pos = start + 1
    while True:
        pos = text.find(quote, pos)
        if pos < 0:
            raise _Malformed(f"unterminated {quote}...{quote} at position {start}")
        if text.startswith(quote * 2, pos):
            pos += 2
            continue
        return pos


def _block_comment_end(text: str, start: int) -> int:
    """Index after the /* ... */ opened at ``start``; Polars nests them, so this does too."""
    depth, pos = 0, start
    while pos < len(text):
        if text.startswith("/*", pos):
            depth, pos = depth + 1, pos + 2
        elif text.startswith("*/", pos):
            depth, pos = depth - 1, pos + 2
            if depth == 0:
                return pos
        else:
            pos += 1
    raise _Malformed(f"unterminated /* comment at position {start}")


def _prefixed_quote(text: str, word: str, end: int) -> int | None:
    """Where the quote of a prefixed literal (E'..', X'..', B"..", U&'..') starts, if ``word`` is a prefix."""
    if len(word) == 1 and word in "bBrRnNeExX" and text.startswith("'", end):
        return end
    if len(word) == 1 and word in "bBrR" and text.startswith('"', end):
        return end
    if word in ("u", "U") and text.startswith("&'", end):
        return end + 1
    return None


def _polars_tokens(text: str) -> list[_Token]:
    """Tokens as the Polars SQL tokenizer sees them; what could be read two ways is refused instead."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch in _WHITESPACE:
            pos += 1
        elif text.startswith("--", pos):
            newline = text.find("\n", pos)  # Polars ends these comments at \n only
            pos = len(text) if newline < 0 else newline + 1
        elif text.startswith("/*", pos):
            pos = _block_comment_end(text, pos)
        elif ch == "'":
            end = _quoted_end(text, pos, "'")
            tokens.append(_Token("string", text[pos + 1 : end].replace("''", "'"), pos))
            pos = end + 1
        elif ch in '"`':
            end = _quoted_end(text, pos, ch)
            tokens.append(_Token("quoted", text[pos + 1 : end].replace(ch * 2, ch), pos))
            pos = end + 1
        elif ch == "$":
            raise _Refused(
                "$ is not supported here (dollar-quoted strings, $1 parameters); write strings as '...'"
            )
        elif ch.isalpha() or ch in "_#@":
            end = pos + 1
            while end < len(text) and (text[end].isalnum() or text[end] in "_$#@"):
                end += 1
            word = text[pos:end]
            quote = _prefixed_quote(text, word, end)
            if quote is None:
                tokens.append(_Token("word", word, pos))
                pos = end
                continue
            close = _quoted_end(text, quote, text[quote])
            if "\\" in text[quote:close]:
                # backslash escapes in these literals would let a quote hide from this tokenizer
                raise _Refused(
                    f"backslashes are not supported in {word}'...' literals; write a plain '...' string"
                )
            tokens.append(_Token("string", text[quote + 1 : close], pos))
            pos = close + 1
        elif (number := _NUMBER.match(text, pos)) is not None:
            tokens.append(_Token("number", number.group(), pos))
            pos = number.end()
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
            if op is None:
                raise _Malformed(f"unexpected character {ch!r} (U+{ord(ch):04X}) at position {pos}")
            tokens.append(_Token("op", op, pos))
            pos += len(op)
    return tokens


def _matching_brackets(tokens: list[_Token]) -> dict[int, int]:
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[int] = []
    matches: dict[int, int] = {}
    for index, token in enumerate(tokens):
        if token.is_op(*pairs):
            stack.append(index)
        elif token.is_op(*pairs.values()):
            if not stack or pairs[tokens[stack[-1]].text] != token.text:
                raise _Malformed(f"unbalanced '{token.text}' at position {token.pos}")
            matches[stack.pop()] = index
    if stack:
        raise _Malformed(f"unclosed '{tokens[stack[-1]].text}' at position {tokens[stack[-1]].pos}")
    return matches


@dataclass(slots=True)
class _Frame:
    """One level of brackets: a query, a call's arguments or an expression, and where a FROM clause is."""

    kind: str  # query, call, expr
    call: str = ""
    from_state: str = ""  # "": not in FROM; "table": a table comes next; "after": after a table
    is_table: bool = False  # this bracket is a table of the enclosing FROM: (SELECT ...) or (a JOIN b)


@dataclass
class _PolarsChecker:
    tokens: list[_Token]
    expression: bool
    tables: frozenset[str]
    functions: frozenset[str]
    ctes: set[str] = field(default_factory=set)
    not_calls: set[int] = field(default_factory=set)  # alias and CTE names followed by a column list

    def __post_init__(self) -> None:
        self.matches = _matching_brackets(self.tokens)

    def token(self, index: int) -> _Token:
        return self.tokens[index] if 0 <= index < len(self.tokens) else _Token("end", "", -1)

    @property
    def readable(self) -> str:
        if self.expression:
            return "an expression may only use the columns of its table"
        names = ", ".join(f"`{t}`" for t in sorted(self.tables))
        what = "the table" if len(self.tables) == 1 else "the tables"
        return f"this query may only read {what} {names} (and tables it defines with WITH)"

    def run(self) -> None:
        if not self.tokens:
            example = "amount > 10" if self.expression else "SELECT * FROM data"
            raise _Refused(f"is empty; write e.g. {example}")
        if not self.expression:
            self.check_statement_start(0, "a query")
        stack = [_Frame("expr" if self.expression else "query")]
        for index, token in enumerate(self.tokens):
            frame = stack[-1]
            if token.is_op(";"):
                if self.expression or index != len(self.tokens) - 1:
                    raise _Refused("only one statement is allowed; remove the ';' and what follows it")
            elif frame.from_state == "table" and not token.is_op(")", "]", "}"):
                if token.is_op("("):
                    stack.append(self.table_bracket(index))
                    frame.from_state = "after"
                else:
                    self.table_reference(index, frame)
            elif token.is_op("(", "[", "{"):
                stack.append(self.bracket(index))
            elif token.is_op(")", "]", "}"):
                closed = stack.pop()
                if closed.is_table:
                    self.mark_alias(index)
            elif frame.from_state == "after" and (token.is_op(",") or token.keyword == "JOIN"):
                frame.from_state = "table"
            else:
                if frame.from_state == "after" and token.keyword in _CLAUSE_AFTER_FROM:
                    frame.from_state = ""
                self.word(index, frame)

    def check_statement_start(self, index: int, what: str) -> None:
        while self.token(index).is_op("("):
            index += 1
        keyword = self.token(index).keyword
        if keyword not in _QUERY_START:
            found = keyword or self.token(index).text or "nothing"
            raise _Refused(
                f"only a SELECT is allowed as {what} (found {found}); {self.readable}; "
                "other statements (CREATE, COPY, SHOW, EXPLAIN, ...) cannot run here"
            )

    def bracket(self, index: int) -> _Frame:
        before, first = self.token(index - 1), self.token(index + 1)
        if first.keyword in ("SELECT", "WITH", "VALUES"):
            return _Frame("query")
        if self.tokens[index].is_op("(") and before.is_name and self.is_call(index - 1):
            return _Frame("call", call=before.text.lower())
        return _Frame("query" if first.keyword == "FROM" else "expr")

    def table_bracket(self, index: int) -> _Frame:
        """A bracket where FROM expects a table: a subquery, or a join in brackets, (a JOIN b ON ...)."""
        if self.token(index + 1).keyword in _QUERY_START:
            return _Frame("query", is_table=True)
        return _Frame("query", from_state="table", is_table=True)

    def table_reference(self, index: int, frame: _Frame) -> None:
        token = self.tokens[index]
        frame.from_state = "after"
        if token.keyword == "LATERAL":
            frame.from_state = "table"
            return
        if token.kind == "string":
            raise _Refused(f"'{token.text}' cannot be read as a table: {_NO_FILES}; {self.readable}")
        if not token.is_name or token.keyword in _CLAUSE_AFTER_FROM:
            raise _Refused(f"expected a table name after FROM or JOIN, found '{token.text}'; {self.readable}")
        last, parts = index, [token.text]
        while self.token(last + 1).is_op(".") and self.token(last + 2).is_name:
            last += 2
            parts.append(self.tokens[last].text)
        name = ".".join(parts)
        if self.token(last + 1).is_op("("):
            if len(parts) > 1 or parts[0].lower() not in POLARS_TABLE_FUNCTIONS:
                raise _Refused(self.table_function_problem(name))
            self.mark_alias(self.matches[last + 1])
        elif len(parts) > 1 or name.lower() not in self.tables | self.ctes:
            raise _Refused(
                f"table '{name}' is not available: {self.readable}; "
                "bring other data in with an extract step and combine it with join_merge"
            )
        else:
            self.mark_alias(last)

    def table_function_problem(self, name: str) -> str:
        if _IO_NAME.search(name.lower().rsplit(".", 1)[-1]):
            return f"{name}() reads files, which SQL here may not do; {_FILE_STEPS}; {self.readable}"
        allowed = ", ".join(sorted(POLARS_TABLE_FUNCTIONS))
        return f"table function {name}() is not allowed (only {allowed}); {self.readable}"

    def mark_alias(self, end: int) -> None:
        """After a table ending at ``end``: an alias with a column list, ``AS t(a, b)``, is not a call."""
        index = end + 1
        explicit = self.token(index).keyword == "AS"
        index += explicit
        alias = self.token(index)
        if (
            alias.is_name
            and (explicit or alias.keyword not in _NOT_AN_ALIAS)
            and self.token(index + 1).is_op("(")
        ):
            self.not_calls.add(index)

    def word(self, index: int, frame: _Frame) -> None:
        token = self.tokens[index]
        keyword = token.keyword
        if keyword == "FROM" and self.token(index - 1).keyword != "DISTINCT":  # not IS DISTINCT FROM
            if frame.kind == "call" and frame.call in _FROM_IN_ARGUMENTS:
                return
            if self.expression:
                raise _Refused(self.no_query_problem("FROM"))
            frame.from_state = "table"
        elif keyword == "JOIN":
            frame.from_state = "table"
        elif keyword in ("SELECT", "WITH", "VALUES") and self.expression:
            raise _Refused(self.no_query_problem(keyword))
        elif keyword == "WITH":
            self.common_table_expressions(index)
        elif keyword == "TABLE":
            raise _Refused("TABLE x is not supported; write SELECT * FROM x")
        if token.is_name and self.token(index + 1).is_op("(") and self.is_call(index):
            self.check_call(index)

    def no_query_problem(self, keyword: str) -> str:
        return (
            f"{keyword} is not allowed in an expression: write a condition or calculation on the columns "
            "(e.g. amount > 10), and use a sql_transform step for queries"
        )

    def is_call(self, index: int) -> bool:
        """Whether the name at ``index``, before "(", calls a function (is not syntax, a type, an alias)."""
        token, before = self.tokens[index], self.token(index - 1)
        if index in self.not_calls or token.keyword in _SYNTAX_PARENS:
            return False
        return not (before.is_op("::") or before.keyword == "AS")  # CAST(x AS DECIMAL(10, 2)), x::VARCHAR(9)

    def check_call(self, index: int) -> None:
        token = self.tokens[index]
        name = token.text.lower()
        if self.token(index - 1).is_op("."):
            raise _Refused(
                f"function names cannot be qualified ('.{token.text}('); call the function by its name alone"
            )
        if name in self.functions:
            return
        if _IO_NAME.search(name):
            raise _Refused(
                f"{token.text}() reads files, which SQL here may not do; {_FILE_STEPS}; {self.readable}"
            )
        close = _INSTEAD.get(name) or next(iter(difflib.get_close_matches(name, self.functions, 1, 0.75)), "")
        hint = f"did you mean {close}? " if close else ""
        raise _Refused(
            f"function {token.text}() is not available; {hint}"
            "use Polars SQL functions such as upper, round, coalesce, concat, sum, count"
        )

    def common_table_expressions(self, index: int) -> None:
        """Record the names of WITH's tables; each body, and what follows them, must be a query."""
        index += 1 + (self.token(index + 1).keyword == "RECURSIVE")
        while True:
            name = self.token(index)
            if not name.is_name:
                raise _Refused(f"expected a name after WITH, found '{name.text}'")
            self.ctes.add(name.text.lower())
            index += 1
            if self.token(index).is_op("("):  # WITH t(a, b) AS (...)
                self.not_calls.add(index - 1)
                index = self.matches[index] + 1
            if self.token(index).keyword != "AS" or not self.token(index + 1).is_op("("):
                raise _Refused(f"expected AS (SELECT ...) after WITH {name.text}")
            self.check_statement_start(index + 2, f"the body of WITH {name.text}")
            index = self.matches[index + 1] + 1
            if not self.token(index).is_op(","):
                break
            index += 1
        self.check_statement_start(index, "the query after WITH")


def polars_sql_problem(
    text: str,
    *,
    expression: bool,
    tables: Collection[str] = ("data",),
    extra_functions: Collection[str] = (),
) -> str | None:
    """Why ``text`` may not run as Polars SQL here (the rule and how to fix it), or None.

    ``expression``: one SQL expression (no SELECT, FROM or subquery); otherwise one SELECT over ``tables``
    (or WITH ... SELECT). Functions must be Polars SQL scalar/aggregate/window functions or
    ``extra_functions``; tables are ``tables`` or defined by WITH.
    """
    functions = POLARS_FUNCTIONS | {f.lower() for f in extra_functions}
    try:
        tokens = _polars_tokens(text)
        _PolarsChecker(tokens, expression, frozenset(t.lower() for t in tables), functions).run()
    except _Malformed as malformed:
        return f"cannot be checked, so it does not run: {malformed}"
    except _Refused as refused:
        return str(refused)
    return None


def check_polars_sql(
    text: str,
    *,
    expression: bool,
    tables: Collection[str] = ("data",),
    extra_functions: Collection[str] = (),
    field: str | None = None,
) -> None:
    """Raise a PluginError (``"<field>: <the rule, how to fix it>"``) unless ``text`` may run."""
    problem = polars_sql_problem(text, expression=expression, tables=tables, extra_functions=extra_functions)
    if problem is not None:
        raise PluginError(f"{field or ('expr' if expression else 'query')}: {problem}")


# ---------------------------------------------------------------------------------------------------------
# SQLite authorizer
# ---------------------------------------------------------------------------------------------------------

#: Read-only introspection of the connection's own tables; the argument names a table or index.
SQLITE_PRAGMAS_WITH_ARGUMENT = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
    }
)
#: Values that may be read but not set (setting them changes files or the database's header).
SQLITE_PRAGMAS_READ_ONLY = frozenset(
    {"foreign_keys", "data_version", "user_version", "application_id", "encoding", "page_count", "page_size"}
)
_SQLITE_VTABLE_MODULES = frozenset({"fts3", "fts4", "fts5", "rtree", "rtree_i32"})
_SQLITE_FUNCTIONS_REFUSED = frozenset({"load_extension", "fts3_tokenizer"})


def _sqlite_refusal(action: int, arg1: str | None, arg2: str | None, *, transactions: bool) -> str | None:
    if action == sqlite3.SQLITE_ATTACH:  # VACUUM INTO 'file' is authorized as an ATTACH of the file
        return "ATTACH and VACUUM are not allowed: SQL here works on the database of its dsn only"
    if action == sqlite3.SQLITE_DETACH:
        return "DETACH is not allowed"
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in SQLITE_PRAGMAS_WITH_ARGUMENT or (name in SQLITE_PRAGMAS_READ_ONLY and arg2 is None):
            return None
        allowed = ", ".join(sorted(SQLITE_PRAGMAS_WITH_ARGUMENT | SQLITE_PRAGMAS_READ_ONLY))
        setting = "" if arg2 is None else f" = {arg2}"
        return f"PRAGMA {name}{setting} is not allowed; the read-only pragmas are: {allowed}"
    if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT) and not transactions:
        word = "SAVEPOINT" if action == sqlite3.SQLITE_SAVEPOINT and arg1 == "BEGIN" else (arg1 or "")
        return f"{word} is not allowed: {_TRANSACTION_HINT}"
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _SQLITE_FUNCTIONS_REFUSED:
        return f"function {arg2}() is not allowed"
    vtable = action in (sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE)
    if vtable and (arg2 or "").lower() not in _SQLITE_VTABLE_MODULES:
        allowed = ", ".join(sorted(_SQLITE_VTABLE_MODULES))
        return f"virtual tables of module {arg2} are not allowed (only {allowed})"
    return None


class SqliteAuthorizer:
    """A ``Connection.set_authorizer`` callback; ``refused`` keeps the reason of its last refusal."""

    def __init__(self, *, transactions: bool = True) -> None:
        self.transactions = transactions
        self.refused: str | None = None

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db_name: str | None, source: str | None
    ) -> int:
        reason = _sqlite_refusal(action, arg1, arg2, transactions=self.transactions)
        if reason is None:
            return sqlite3.SQLITE_OK
        self.refused = reason
        return sqlite3.SQLITE_DENY


def sqlite_authorizer(*, transactions: bool = True) -> SqliteAuthorizer:
    """The authorizer for plugin connections; ``transactions=False`` also refuses BEGIN/COMMIT/SAVEPOINT..."""
    return SqliteAuthorizer(transactions=transactions)


def guard_sqlite(conn: sqlite3.Connection, *, transactions: bool = True) -> SqliteAuthorizer:
    """Install the authorizer on ``conn`` (extension loading stays disabled) and return it."""
    disable_extensions = getattr(conn, "enable_load_extension", None)  # absent when SQLite was built without
    if disable_extensions is not None:
        disable_extensions(False)
    authorizer = sqlite_authorizer(transactions=transactions)
    conn.set_authorizer(authorizer)
    return authorizer


@contextlib.contextmanager
def sqlite_user_statements(conn: sqlite3.Connection) -> Iterator[SqliteAuthorizer]:
    """While user statements run, transaction control is refused too; the plugin's own COMMIT runs after."""
    # set_authorizer expires prepared statements, so a cached "COMMIT" is authorized again, not reused
    authorizer = guard_sqlite(conn, transactions=False)
    try:
        yield authorizer
    finally:
        guard_sqlite(conn)


# ---------------------------------------------------------------------------------------------------------
# sql_execute scripts
# ---------------------------------------------------------------------------------------------------------

_TRANSACTION_HINT = (
    "sql_execute runs all its statements in one transaction of its own (a failure changes nothing); remove it"
)
_ROUTINES = frozenset({"TRIGGER", "FUNCTION", "PROCEDURE", "EVENT"})
_NOT_A_BLOCK_END = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})  # MySQL: END IF closes no BEGIN/CASE
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")


@dataclass(slots=True)
class _Lexeme:
    kind: str  # space, comment, string, word, op
    text: str


def _script_lexemes(sql: str, dialect: str | None) -> list[_Lexeme]:
    """The script cut where statements may end: strings, quoted names, comments, $$ bodies stay whole."""
    mysql, postgres, sqlite = dialect == "mysql", dialect in ("postgresql", None), dialect == "sqlite"
    out: list[_Lexeme] = []
    pos = 0
    while pos < len(sql):
        ch, rest = sql[pos], sql[pos : pos + 3]
        if ch.isspace():
            end = pos + 1
            while end < len(sql) and sql[end].isspace():
                end += 1
            out.append(_Lexeme("space", sql[pos:end]))
        elif (rest.startswith("--") and (not mysql or len(rest) < 3 or rest[2].isspace())) or (
            mysql and ch == "#"
        ):
            newline = sql.find("\n", pos)
            end = len(sql) if newline < 0 else newline + 1
            out.append(_Lexeme("comment", sql[pos:end]))
        elif rest.startswith("/*"):
            if mysql and (rest == "/*!" or sql.startswith("/*M!", pos)):
                raise _Refused(
                    "MySQL executable comments /*! ... */ are not allowed; write the SQL without them"
                )
            end = _script_comment_end(sql, pos, nested=postgres)
            out.append(_Lexeme("comment", sql[pos:end]))
        elif ch == "'" or (ch == '"' and mysql):
            escapes = mysql or (
                postgres and bool(out) and out[-1].kind == "word" and out[-1].text in ("e", "E")
            )
            end = _script_string_end(sql, pos, ch, escapes=escapes)
            out.append(_Lexeme("string", sql[pos:end]))
        elif ch == '"' or (ch == "`" and not postgres) or (ch == "[" and sqlite):
            close = "]" if ch == "[" else ch
            end = _script_string_end(sql, pos, close, escapes=False, opening=ch)
            out.append(_Lexeme("string", sql[pos:end]))
        elif ch == "$" and postgres and (tag := _DOLLAR_TAG.match(sql, pos)) is not None:
            closing = sql.find(tag.group(), tag.end())
            if closing < 0:
                raise _Refused(f"unterminated {tag.group()} body starting on line {_line(sql, pos)}")
            end = closing + len(tag.group())
            out.append(_Lexeme("string", sql[pos:end]))
        elif ch.isalnum() or ch in "_$":
            end = pos + 1
            while end < len(sql) and (sql[end].isalnum() or sql[end] in "_$"):
                end += 1
            out.append(_Lexeme("word", sql[pos:end]))
        else:
            end = pos + 1
            out.append(_Lexeme("op", ch))
        pos = end
    return out


def _script_comment_end(sql: str, start: int, *, nested: bool) -> int:
    depth, pos = 0, start
    while pos < len(sql):
        if sql.startswith("/*", pos) and (nested or depth == 0):
            depth, pos = depth + 1, pos + 2
        elif sql.startswith("*/", pos):
            depth, pos = depth - 1, pos + 2
            if depth == 0:
                return pos
        else:
            pos += 1
    raise _Refused(f"unterminated /* comment starting on line {_line(sql, start)}")


def _script_string_end(sql: str, start: int, close: str, *, escapes: bool, opening: str = "") -> int:
    pos = start + 1
    while pos < len(sql):
        ch = sql[pos]
        if escapes and ch == "\\" or ch == close and sql.startswith(close * 2, pos) and close != "]":
            pos += 2
        elif ch == close:
            return pos + 1
        else:
            pos += 1
    quote = opening or close
    raise _Refused(f"unterminated {quote}...{close} starting on line {_line(sql, start)}")


def _line(sql: str, pos: int) -> int:
    return sql.count("\n", 0, pos) + 1


@dataclass
class _Statement:
    lexemes: list[_Lexeme] = field(default_factory=list)
    first: str = ""  # its first word, upper-case

    @property
    def text(self) -> str:
        return "".join(lexeme.text for lexeme in self.lexemes).strip()

    @property
    def words(self) -> list[str]:
        return [lexeme.text.upper() for lexeme in self.lexemes if lexeme.kind == "word"]

    @property
    def empty(self) -> bool:
        return all(lexeme.kind in ("space", "comment") for lexeme in self.lexemes)


def _split(sql: str, dialect: str | None) -> list[_Statement]:
    lexemes = _script_lexemes(sql, dialect)
    words = [(i, lexeme.text.upper()) for i, lexeme in enumerate(lexemes) if lexeme.kind == "word"]
    next_word = {i: words[n + 1][1] if n + 1 < len(words) else "" for n, (i, _) in enumerate(words)}
    statements, current = [], _Statement()
    depth = blocks = seen = 0
    previous = ""
    opened = routine = False  # routine: CREATE TRIGGER/FUNCTION/PROCEDURE/EVENT, whose BEGIN ... END hold ";"
    for index, lexeme in enumerate(lexemes):
        if lexeme.kind == "op" and lexeme.text == ";" and depth <= 0 and blocks <= 0:
            if not current.empty:
                statements.append(current)
            current, depth, blocks, seen, opened, routine = _Statement(), 0, 0, 0, False, False
            continue
        current.lexemes.append(lexeme)
        if lexeme.kind == "op" and lexeme.text in "()":
            depth += 1 if lexeme.text == "(" else -1
            opened = True
        elif lexeme.kind == "word":
            word = lexeme.text.upper()
            seen += 1
            if seen == 1:
                current.first = word
            if not opened and seen <= 6 and current.first == "CREATE" and word in _ROUTINES:
                routine = True
            opens_case = word == "CASE" and blocks > 0 and previous != "END"  # not the CASE of END CASE
            if routine and (word == "BEGIN" or opens_case):
                blocks += 1
            elif routine and word == "END" and blocks > 0 and next_word[index] not in _NOT_A_BLOCK_END:
                blocks -= 1
            previous = word
    if not current.empty:
        statements.append(current)
    if dialect == "sqlite":
        statements = _sqlite_complete(statements)
    return statements


def _sqlite_complete(statements: list[_Statement]) -> list[_Statement]:
    """Join pieces SQLite itself calls incomplete (a trigger body this splitter did not recognise)."""
    joined: list[_Statement] = []
    pending: _Statement | None = None
    for statement in statements:
        if pending is not None:
            pending.lexemes += [_Lexeme("op", ";"), *statement.lexemes]
        else:
            pending = statement
        if sqlite3.complete_statement(pending.text + "\n;"):  # the newline ends a trailing -- comment
            joined.append(pending)
            pending = None
    if pending is not None:
        joined.append(pending)
    return joined


def split_statements(sql: str, dialect: str | None = None) -> list[str]:
    """The statements of a script, split on ``;`` outside strings, quoted names, comments, dollar-quoted
    bodies and the BEGIN ... END bodies of CREATE TRIGGER/FUNCTION/PROCEDURE. Raises PluginError."""
    try:
        return [statement.text for statement in _split(sql, dialect)]
    except _Refused as refused:
        raise PluginError(f"sql: {refused}") from None


def _statement_refusal(statement: _Statement, dialect: str | None) -> str | None:
    words = statement.words
    first = words[0] if words else ""
    second = words[1] if len(words) > 1 else ""
    if first in ("BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE", "XA") or (
        first in ("START", "PREPARE") and second == "TRANSACTION"
    ):
        return f"transaction control is not allowed: {_TRANSACTION_HINT}"
    if first == "SET" and ("TRANSACTION" in words or "AUTOCOMMIT" in words):
        return f"transaction settings are not allowed: {_TRANSACTION_HINT}"
    if first in ("ATTACH", "DETACH"):
        return "ATTACH and DETACH are not allowed: sql_execute works on the database of its dsn only"
    if first == "LOAD" and "LOCAL" in words:
        return (
            "LOAD DATA LOCAL reads files of the Pipedeck worker and is not allowed; "
            "read files with csv_extract and load them with sql_load"
        )
    if first == "VACUUM":
        return "VACUUM is not allowed: it cannot run in sql_execute's transaction (VACUUM INTO writes a file)"
    if dialect in ("mysql", None) and first in ("LOCK", "UNLOCK") and second == "TABLES":
        return f"{first} TABLES commits the transaction on MariaDB; {_TRANSACTION_HINT}"
    if first == "DELIMITER":
        return (
            "DELIMITER is a command of the mysql client, not SQL: end each statement with ; "
            "(the BEGIN ... END body of a CREATE PROCEDURE or TRIGGER stays whole)"
        )
    if dialect in ("sqlite", None) and first == "PRAGMA" and second:
        name = second.lower()
        if name in ("main", "temp") and len(words) > 2:  # PRAGMA main.table_info(t)
            name = words[2].lower()
        sets = any(lexeme.kind == "op" and lexeme.text in "=(" for lexeme in statement.lexemes)
        value = "..." if sets and name not in SQLITE_PRAGMAS_WITH_ARGUMENT else None
        return _sqlite_refusal(sqlite3.SQLITE_PRAGMA, name, value, transactions=True)
    return None


def _snippet(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def sql_script_problem(sql: str, dialect: str | None = None) -> str | None:
    """Why the ``sql_execute`` script may not run (the first statement refused, numbered), or None.

    ``dialect`` is "postgresql", "mysql", "sqlite", or None when not known (the rules of all of them)."""
    try:
        statements = _split(sql, dialect)
    except _Refused as refused:
        return str(refused)
    if not statements:
        return "contains no statement; write e.g. DELETE FROM totals WHERE day < '2024-01-01'"
    for number, statement in enumerate(statements, 1):
        reason = _statement_refusal(statement, dialect)
        if reason is not None:
            return (
                f"statement {number} of {len(statements)} `{_snippet(statement.text)}` is refused: {reason}"
            )
    return None


def check_sql_script(sql: str, dialect: str | None = None) -> list[str]:
    """The statements of ``sql``; a PluginError naming the statement and the fix when one is refused."""
    problem = sql_script_problem(sql, dialect)
    if problem is not None:
        raise PluginError(f"sql: {problem}")
    return [statement.text for statement in _split(sql, dialect)]


def statement_label(statements: list[str], index: int) -> str:
    """``statement 3 of 5 `UPDATE t SET ...``` for messages about the statement at ``index`` (0-based)."""
    return f"statement {index + 1} of {len(statements)} `{_snippet(statements[index])}`"
